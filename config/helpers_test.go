package config

// envMap returns a lookup function over m.
func envMap(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

// strs formats each element of list with String; nil stays nil.
func strs[T interface{ String() string }](list []T) []string {
	if list == nil {
		return nil
	}
	out := make([]string, len(list))
	for i, v := range list {
		out[i] = v.String()
	}
	return out
}
