package proc

import (
	"errors"
	"fmt"
	"testing"
)

// FuzzParseStat: any input either parses or fails with ErrFormat; a parsed
// stat line written back in the kernel's form parses to the same times.
func FuzzParseStat(f *testing.F) {
	f.Add([]byte("42 (gateway) S 1 2 3 4 5 6 7 8 9 10 250 75 0 0 20 0 4 0 100 200 300"))
	f.Add([]byte("1 ((sd-pam)) S 1 1 1 0 -1 4194560 42 0 0 0 1 2 0 0 20 0 1 0 7 10 100"))
	f.Add([]byte("7 (a b) R"))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := ParseStat(b)
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error %v does not wrap ErrFormat", err)
			}
			return
		}
		line := fmt.Sprintf("9 (x) S 1 2 3 4 5 6 7 8 9 10 %d %d 0", got.User, got.System)
		again, err := ParseStat([]byte(line))
		if err != nil || again != got {
			t.Fatalf("round trip of %+v: %+v, %v", got, again, err)
		}
	})
}

// FuzzParseStatusKB: any input either parses to a non-negative byte count
// or fails with ErrFormat; a parsed value written back parses the same.
func FuzzParseStatusKB(f *testing.F) {
	f.Add([]byte("Name:\tgateway\nVmRSS:\t   1536 kB\n"))
	f.Add([]byte("VmRSS: 12 MB\n"))
	f.Add([]byte("VmRSS:\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := ParseStatusKB(b, "VmRSS")
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error %v does not wrap ErrFormat", err)
			}
			return
		}
		if n < 0 || n%1024 != 0 {
			t.Fatalf("VmRSS parsed to %d bytes", n)
		}
		again, err := ParseStatusKB([]byte(fmt.Sprintf("VmRSS:\t%d kB\n", n>>10)), "VmRSS")
		if err != nil || again != n {
			t.Fatalf("round trip of %d: %d, %v", n, again, err)
		}
	})
}
