// Package fleet turns the fetcher sidecars' log markers into metrics of the
// manager: the seed's three fetcher metrics, summed per namespace (issue 5,
// "Fleet metrics"). It is optional, off by default.
//
// Metrics, registered on the Registerer given to New:
//
//	dev_hot_fleet_refresh_total{namespace}                 REFRESH_OK lines
//	dev_hot_fleet_refresh_failure_total{namespace,reason}  REFRESH_FAIL lines; reason is a refresh.Reason or "unknown"
//	dev_hot_fleet_refresh_latency_seconds{namespace}       histogram of REFRESH_OK latency_ms
//	dev_hot_fleet_malformed_lines_total{namespace}         marker lines with a missing or bad field
//	dev_hot_fleet_pods_ignored{namespace}                  gauge: pods that look dev-hot but no injected Deployment owns
//	dev_hot_fleet_streams_waiting{namespace}               gauge: fetchers whose log waits for a stream slot
//
// Malformed lines: a line counts by its first word alone, REFRESH_OK or
// REFRESH_FAIL, because the fetcher writes that word only when the event
// happened; a damaged rest must not hide it. A missing or bad latency_ms
// keeps the line out of the histogram (a false 0 would skew it); a missing
// reason, or one outside the enum, is counted as reason="unknown"; every
// such line is also counted as malformed. Lines that do not start with a
// marker word — slog lines, lookalikes — are ignored. The line's format
// is package refresh's, which the fetcher writes with; see ParseLine.
//
// Pods: the pods of a dev-hot Deployment carry the webhook's pod-template
// annotation aether.dev/dev-hot="true", not the Deployment's label, and the
// API cannot select on annotations. So the Ingester watches every
// non-terminal pod in the cluster, through an informer whose transform keeps
// only names, the annotation, the controller and the fetcher's container
// status, and tails those that have the annotation and a container named
// aether-fetcher (an initContainer in native mode, a container in legacy
// mode) and that an injected Deployment owns: pod → ReplicaSet → Deployment,
// each the controller of the one before, matched by UID, the Deployment
// carrying the webhook's aether.dev/injected record. Anyone who may create
// pods can make one look dev-hot; such pods are not read, each shows in
// dev_hot_fleet_pods_ignored, and the first of each namespace is logged.
// ReplicaSets and Deployments are watched too (slimmed likewise), and a
// change of either looks again at the pods it owns, since a pod can be seen
// before its ReplicaSet.
//
// Streams: a follow stream holds a slot while its fetcher runs. MaxStreams
// (100) are open at most, and at most WithStreamsPerNamespace (default 10,
// --fleet-streams-per-namespace) for one namespace, taken first, so that the
// fetchers of one namespace cannot take the slots of every other. A fetcher
// waiting for a slot shows in dev_hot_fleet_streams_waiting, and the first
// wait of each namespace is logged.
//
// Counting once: every line is asked for with its kubelet timestamp, and
// each pod keeps a cursor — the last timestamp read and how many lines had
// exactly that timestamp. A reconnect asks for the log since that second and
// skips what the cursor has seen, so that neither a broken stream nor a
// container restart counts a line twice. After a restart, the lines the old
// instance wrote while no stream was open are read once with previous=true.
// Lines from before Start are not counted: a previous leader counted them in
// counters of its own, which Prometheus sees end; the few lines of a leader
// change's gap are lost rather than guessed at.
//
// RBAC: when enabled, the manager needs, cluster-wide, list and watch on
// pods and replicasets (the informers never get a single object) and get on
// pods/log, besides the list and watch on deployments it has anyway. The
// chart renders these only when fleet metrics are on.
package fleet
