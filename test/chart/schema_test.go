package chart

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/aether-dev/aether-devhot/pkg/bounds"
	"github.com/aether-dev/aether-devhot/pkg/store"
)

// TestSchemaRangesMatchTheStore: values.schema.json repeats the store's
// ranges (pkg/store), so that helm refuses what the store would refuse at
// start; this keeps the two the same.
func TestSchemaRangesMatchTheStore(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(chartDir, "values.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	type prop struct {
		Minimum, Maximum *int64
	}
	var schema struct {
		Properties struct {
			Store struct {
				Properties map[string]prop
			}
		}
	}
	if err := json.Unmarshal(raw, &schema); err != nil {
		t.Fatal(err)
	}
	for value, r := range map[string]bounds.Int{
		"maxBlobBytes":        store.BlobBytesRange,
		"maxTotalBytes":       store.TotalBytesRange,
		"namespaceQuotaBytes": store.TotalBytesRange,
		"maxUploads":          store.UploadsRange,
		"maxNamespaceUploads": store.UploadsRange,
	} {
		p := schema.Properties.Store.Properties[value]
		if p.Minimum == nil || p.Maximum == nil || *p.Minimum != r.Min || *p.Maximum != r.Max {
			t.Errorf("store.%s: schema range %v..%v, want %d..%d", value, p.Minimum, p.Maximum, r.Min, r.Max)
		}
	}
}
