package chart

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aether-dev/aether-devhot/cmd/webhook/app"
	"github.com/aether-dev/aether-devhot/pkg/bounds"
	"github.com/aether-dev/aether-devhot/pkg/store"
)

// TestSchemaRangesMatchTheStore: values.schema.json repeats the ranges of
// the store (pkg/store) and of the manager's flags the chart sets, so that
// helm refuses what the binaries would refuse at start; this keeps them
// the same.
func TestSchemaRangesMatchTheStore(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(chartDir, "values.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	type prop struct {
		Minimum, Maximum *int64
	}
	var schema struct {
		Properties map[string]struct {
			Properties map[string]prop
		}
	}
	if err := json.Unmarshal(raw, &schema); err != nil {
		t.Fatal(err)
	}
	for value, r := range map[string]bounds.Int{
		"store.maxBlobBytes":               store.BlobBytesRange,
		"store.maxTotalBytes":              store.TotalBytesRange,
		"store.namespaceQuotaBytes":        store.TotalBytesRange,
		"store.maxUploads":                 store.UploadsRange,
		"store.maxNamespaceUploads":        store.UploadsRange,
		"fleetMetrics.streamsPerNamespace": app.FleetStreamsPerNamespaceRange,
	} {
		object, key, _ := strings.Cut(value, ".")
		p := schema.Properties[object].Properties[key]
		if p.Minimum == nil || p.Maximum == nil || *p.Minimum != r.Min || *p.Maximum != r.Max {
			t.Errorf("%s: schema range %v..%v, want %d..%d", value, p.Minimum, p.Maximum, r.Min, r.Max)
		}
	}
}
