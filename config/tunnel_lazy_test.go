package config

import "testing"

// TestParseForwardLazy: --lazy is off by default, set by the flag or by
// TUNNEL_LAZY, and the flag wins over the variable.
func TestParseForwardLazy(t *testing.T) {
	f := newTestFiles(t)
	for _, c := range []struct {
		name string
		args []string
		env  map[string]string
		want bool
	}{
		{"default", nil, nil, false},
		{"flag", []string{"--lazy"}, nil, true},
		{"env", nil, map[string]string{"TUNNEL_LAZY": "true"}, true},
		{"flag wins", []string{"--lazy=false"}, map[string]string{"TUNNEL_LAZY": "true"}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			fw, err := ParseForward(append(append(tunnelArgs(f), "-L", "5432=pg"), c.args...), envMap(c.env), nil)
			if err != nil {
				t.Fatal(err)
			}
			if fw.Lazy != c.want {
				t.Fatalf("Lazy = %v, want %v", fw.Lazy, c.want)
			}
		})
	}
}
