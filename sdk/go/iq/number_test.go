package iq

import (
	"math"
	"testing"
)

func TestAppendFixed(t *testing.T) {
	for _, c := range []struct {
		v      int64
		places int
		want   string
	}{
		{2137, 2, "21.37"}, {-5, 2, "-0.05"}, {0, 2, "0.00"}, {-100, 2, "-1.00"}, {5, 2, "0.05"},
		{-2147483648, 2, "-21474836.48"}, {451, 1, "45.1"}, {0, 1, "0.0"}, {4294967295, 1, "429496729.5"},
		{7, 0, "7"}, {-7, -1, "-7"}, {1, 19, "0.0000000000000000001"}, {1, 21, "0.000000000000000000001"},
		{math.MaxInt64, 19, "0.9223372036854775807"}, {math.MinInt64, 3, "-9223372036854775.808"},
		{math.MinInt64, 0, "-9223372036854775808"},
	} {
		if got := string(AppendFixed([]byte("x"), c.v, c.places)); got != "x"+c.want {
			t.Errorf("AppendFixed(%d, %d) = %s, want %s", c.v, c.places, got[1:], c.want)
		}
	}
}
