package energy

import (
	"reflect"
	"testing"
)

func TestParseVisibleDevices(t *testing.T) {
	tests := []struct {
		value string
		set   bool
		want  []VisibleEntry
		all   bool
	}{
		{"", false, nil, true},
		{"", true, nil, false},
		{"0,2", true, []VisibleEntry{{Index: 0}, {Index: 2}}, false},
		{" 1 , GPU-abc ", true, []VisibleEntry{{Index: 1}, {Index: -1, UUID: "GPU-abc"}}, false},
		{"MIG-xyz", true, []VisibleEntry{{Index: -1, UUID: "MIG-xyz"}}, false},
		{"0,bogus,1", true, []VisibleEntry{{Index: 0}}, false},
		{"1,-1,2", true, []VisibleEntry{{Index: 1}}, false},
		{"NoDevFiles", true, nil, false},
	}
	for _, tt := range tests {
		got, all := ParseVisibleDevices(tt.value, tt.set)
		if all != tt.all || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseVisibleDevices(%q, %v) = %+v, %v; want %+v, %v", tt.value, tt.set, got, all, tt.want, tt.all)
		}
	}
}
