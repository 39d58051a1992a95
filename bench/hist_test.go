package bench

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestBuckets checks that every value falls in the bucket bucketRange
// reports, and that neighbouring buckets tile the number line.
func TestBuckets(t *testing.T) {
	vals := []uint64{0, 1, 31, 32, 33, 63, 64, 65, 1000, 1 << 20, 1<<20 + 12345, 1<<62 + 7, math.MaxInt64, math.MaxUint64}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		vals = append(vals, rng.Uint64()>>rng.IntN(64))
	}
	for _, v := range vals {
		i := bucketOf(v)
		if i < 0 || i >= numBuckets {
			t.Fatalf("bucketOf(%d) = %d, out of [0, %d)", v, i, numBuckets)
		}
		lo, hi := bucketRange(i)
		if v < lo || v > hi {
			t.Fatalf("value %d in bucket %d [%d, %d]", v, i, lo, hi)
		}
		if v >= subCount && float64(hi-lo) > float64(lo)/subCount {
			t.Fatalf("bucket %d [%d, %d] wider than 1/%d of its start", i, lo, hi, subCount)
		}
	}
	for i := 1; i < numBuckets; i++ {
		_, prevHi := bucketRange(i - 1)
		lo, _ := bucketRange(i)
		if lo != prevHi+1 {
			t.Fatalf("bucket %d starts at %d, bucket %d ends at %d", i, lo, i-1, prevHi)
		}
	}
}

// TestQuantiles compares the histogram with exact quantiles of the same
// samples.
func TestQuantiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{1, 2, 10, 1000, 100000} {
		var h Histogram
		samples := make([]time.Duration, n)
		var sum float64
		for i := range samples {
			// Log-normal-ish latencies from ~10µs to ~100ms.
			d := time.Duration(math.Exp(rng.NormFloat64()*1.5+math.Log(500e3))) + time.Microsecond
			samples[i] = d
			sum += float64(d)
			h.Record(d)
		}
		slices.Sort(samples)
		if h.Count() != uint64(n) || h.Min() != samples[0] || h.Max() != samples[n-1] {
			t.Fatalf("n=%d: count %d min %v max %v, want %d %v %v", n, h.Count(), h.Min(), h.Max(), n, samples[0], samples[n-1])
		}
		if want := time.Duration(math.Round(sum / float64(n))); h.Mean() != want {
			t.Errorf("n=%d: mean %v, want %v", n, h.Mean(), want)
		}
		for _, q := range []float64{0, 0.1, 0.5, 0.9, 0.99, 0.999, 1} {
			rank := max(int(math.Ceil(q*float64(n))), 1)
			exact := samples[rank-1]
			got := h.Quantile(q)
			if rel := math.Abs(float64(got-exact)) / float64(exact); rel > 1.0/subCount {
				t.Errorf("n=%d q=%v: %v, exact %v (relative error %.3f)", n, q, got, exact, rel)
			}
		}
	}
}

func TestHistogramEdges(t *testing.T) {
	var h Histogram
	if h.Quantile(0.5) != 0 || h.Mean() != 0 || h.Max() != 0 || h.Count() != 0 {
		t.Error("empty histogram reports values")
	}
	h.Record(-time.Second) // counts as 0
	h.Record(5)
	if h.Min() != 0 || h.Max() != 5 || h.Quantile(1) != 5 || h.Quantile(0) != 0 || h.Quantile(7) != 5 || h.Quantile(-1) != 0 {
		t.Errorf("min %v max %v q1 %v q0 %v", h.Min(), h.Max(), h.Quantile(1), h.Quantile(0))
	}
	var a, b, all Histogram
	for i := range 1000 {
		d := time.Duration(i*i) * time.Microsecond
		all.Record(d)
		if i%3 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
	}
	var m Histogram
	m.Merge(&a)
	m.Merge(&Histogram{})
	m.Merge(&b)
	if m != all {
		t.Errorf("merged histogram differs from one built from all values: count %d/%d min %v/%v max %v/%v",
			m.Count(), all.Count(), m.Min(), all.Min(), m.Max(), all.Max())
	}
}

func BenchmarkHistogramRecord(b *testing.B) {
	var h Histogram
	b.ReportAllocs()
	d := time.Duration(1)
	for b.Loop() {
		h.Record(d)
		d = d*7 + 13
		d &= 1<<36 - 1
	}
}
