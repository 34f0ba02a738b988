package mutate

import (
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"strings"

	jsonpatch "gomodules.xyz/jsonpatch/v2"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// Patch returns the JSON patch from in to out, where out is what Deployment
// made of in. It looks only at the fields Deployment may change (the
// annotations, the service account and its token's automount, and the
// initContainers, containers and volumes lists), and within a list element that stays it diffs just that
// element, so the cost does not grow with the rest of the object, and a
// field our Go types do not know is never removed (rule 10). Applied to the
// request's raw object it gives the same result as a full diff
// (TestPatchEqualsFullDiff and FuzzMutate prove it).
func Patch(in, out *appsv1.Deployment) ([]jsonpatch.Operation, error) {
	var ops []jsonpatch.Operation
	ops = mapPatch(ops, "/metadata/annotations", in.Annotations, out.Annotations)
	ops = mapPatch(ops, "/spec/template/metadata/annotations", in.Spec.Template.Annotations, out.Spec.Template.Annotations)
	is, os := &in.Spec.Template.Spec, &out.Spec.Template.Spec
	ops = stringPatch(ops, "/spec/template/spec/serviceAccountName", is.ServiceAccountName, os.ServiceAccountName)
	ops = stringPatch(ops, "/spec/template/spec/serviceAccount", is.DeprecatedServiceAccount, os.DeprecatedServiceAccount)
	ops = boolPatch(ops, "/spec/template/spec/automountServiceAccountToken", is.AutomountServiceAccountToken, os.AutomountServiceAccountToken)
	var err error
	containerName := func(c corev1.Container) string { return c.Name }
	if ops, err = listPatch(ops, "/spec/template/spec/initContainers", is.InitContainers, os.InitContainers, containerName); err != nil {
		return nil, err
	}
	if ops, err = listPatch(ops, "/spec/template/spec/containers", is.Containers, os.Containers, containerName); err != nil {
		return nil, err
	}
	return listPatch(ops, "/spec/template/spec/volumes", is.Volumes, os.Volumes, func(v corev1.Volume) string { return v.Name })
}

var pointerEscaper = strings.NewReplacer("~", "~0", "/", "~1")

func mapPatch(ops []jsonpatch.Operation, path string, before, after map[string]string) []jsonpatch.Operation {
	switch {
	case len(before) == 0 && len(after) == 0:
		return ops
	case len(before) == 0:
		return append(ops, jsonpatch.NewOperation("add", path, after))
	case len(after) == 0:
		return append(ops, jsonpatch.NewOperation("remove", path, nil))
	}
	for _, k := range slices.Sorted(maps.Keys(before)) {
		if _, ok := after[k]; !ok {
			ops = append(ops, jsonpatch.NewOperation("remove", path+"/"+pointerEscaper.Replace(k), nil))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(after)) {
		v, had := before[k]
		switch {
		case !had:
			ops = append(ops, jsonpatch.NewOperation("add", path+"/"+pointerEscaper.Replace(k), after[k]))
		case v != after[k]:
			ops = append(ops, jsonpatch.NewOperation("replace", path+"/"+pointerEscaper.Replace(k), after[k]))
		}
	}
	return ops
}

func stringPatch(ops []jsonpatch.Operation, path, before, after string) []jsonpatch.Operation {
	switch {
	case before == after:
		return ops
	case before == "":
		return append(ops, jsonpatch.NewOperation("add", path, after))
	case after == "":
		return append(ops, jsonpatch.NewOperation("remove", path, nil))
	}
	return append(ops, jsonpatch.NewOperation("replace", path, after))
}

func boolPatch(ops []jsonpatch.Operation, path string, before, after *bool) []jsonpatch.Operation {
	switch {
	case before == nil && after == nil:
		return ops
	case before == nil:
		return append(ops, jsonpatch.NewOperation("add", path, *after))
	case after == nil:
		return append(ops, jsonpatch.NewOperation("remove", path, nil))
	case *before != *after:
		return append(ops, jsonpatch.NewOperation("replace", path, *after))
	}
	return ops
}

// listPatch diffs a list whose elements have unique names: it removes the
// elements that went, adds the ones that came, and diffs each element that
// stayed on its own. If the staying elements changed order, it falls back
// to a diff of the whole list.
func listPatch[T any](ops []jsonpatch.Operation, path string, before, after []T, name func(T) string) ([]jsonpatch.Operation, error) {
	switch {
	case len(before) == 0 && len(after) == 0:
		return ops, nil
	case len(before) == 0:
		return append(ops, jsonpatch.NewOperation("add", path, after)), nil
	case len(after) == 0:
		return append(ops, jsonpatch.NewOperation("remove", path, nil)), nil
	}
	inAfter := make(map[string]bool, len(after))
	for _, e := range after {
		inAfter[name(e)] = true
	}
	kept := make(map[string]int, len(before)) // name -> index in before
	var keptOrder []string
	for i := len(before) - 1; i >= 0; i-- {
		if n := name(before[i]); inAfter[n] {
			kept[n] = i
		} else {
			ops = append(ops, jsonpatch.NewOperation("remove", path+"/"+strconv.Itoa(i), nil))
		}
	}
	for _, e := range before {
		if _, ok := kept[name(e)]; ok {
			keptOrder = append(keptOrder, name(e))
		}
	}
	var afterKept []string
	for _, e := range after {
		if _, ok := kept[name(e)]; ok {
			afterKept = append(afterKept, name(e))
		}
	}
	if !slices.Equal(keptOrder, afterKept) {
		return wholeDiff(ops, path, before, after)
	}
	for i, e := range after {
		j, stayed := kept[name(e)]
		if !stayed {
			ops = append(ops, jsonpatch.NewOperation("add", path+"/"+strconv.Itoa(i), e))
			continue
		}
		a, err := json.Marshal(before[j])
		if err != nil {
			return nil, err
		}
		b, err := json.Marshal(e)
		if err != nil {
			return nil, err
		}
		if string(a) == string(b) {
			continue
		}
		sub, err := jsonpatch.CreatePatch(a, b)
		if err != nil {
			return nil, err
		}
		prefix := path + "/" + strconv.Itoa(i)
		for _, op := range sub {
			op.Path = prefix + op.Path
			ops = append(ops, op)
		}
	}
	return ops, nil
}

// wholeDiff diffs two lists as JSON values under path.
func wholeDiff[T any](ops []jsonpatch.Operation, path string, before, after []T) ([]jsonpatch.Operation, error) {
	a, err := json.Marshal(map[string][]T{"l": before})
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(map[string][]T{"l": after})
	if err != nil {
		return nil, err
	}
	sub, err := jsonpatch.CreatePatch(a, b)
	if err != nil {
		return nil, err
	}
	for _, op := range sub {
		op.Path = path + strings.TrimPrefix(op.Path, "/l")
		ops = append(ops, op)
	}
	return ops, nil
}
