package bench

import (
	"fmt"
	"math/rand"
	"strconv"
	"strings"
)

// KeySpace is the keys a benchmark asks for: Format applied to the whole
// numbers 0 to N-1 ("k-%07d" gives k-0000000 … k-0999999), the same keys
// Produce writes. With a zero-padded format, key order and number order
// agree, so the keys from Key(i) to Key(i+n-1) are exactly n keys of a
// range scan.
type KeySpace struct {
	N      int
	Format string
}

// DefaultKeyFormat is the key text of the benchmark's records.
const DefaultKeyFormat = "k-%07d"

// Validate checks that the key space is usable.
func (k KeySpace) Validate() error {
	if k.N < 1 {
		return fmt.Errorf("key space: %d keys: want at least 1", k.N)
	}
	if got := fmt.Sprintf(k.Format, 0); strings.Count(k.Format, "%") != 1 || strings.Contains(got, "%!") {
		return fmt.Errorf("key format %q: want exactly one integer verb such as %%07d", k.Format)
	}
	return nil
}

// Key is the i-th key.
func (k KeySpace) Key(i int) string { return fmt.Sprintf(k.Format, i) }

// fastKey formats keys of the common "prefix%0Nd" shape without fmt.
type fastKey struct {
	prefix, suffix string
	width          int
	ok             bool
}

func compileKey(format string) fastKey {
	i := strings.IndexByte(format, '%')
	if i < 0 {
		return fastKey{}
	}
	rest := format[i+1:]
	j := strings.IndexByte(rest, 'd')
	if j < 0 {
		return fastKey{}
	}
	spec := rest[:j]
	w := 0
	if spec != "" {
		if spec[0] != '0' {
			return fastKey{}
		}
		n, err := strconv.Atoi(spec[1:])
		if err != nil {
			return fastKey{}
		}
		w = n
	}
	return fastKey{prefix: format[:i], suffix: rest[j+1:], width: w, ok: true}
}

func (f fastKey) appendKey(dst []byte, n int) []byte {
	dst = append(dst, f.prefix...)
	var num [20]byte
	s := strconv.AppendInt(num[:0], int64(n), 10)
	for pad := f.width - len(s); pad > 0; pad-- {
		dst = append(dst, '0')
	}
	dst = append(dst, s...)
	return append(dst, f.suffix...)
}

// Distribution picks key numbers.
type Distribution string

// The distributions: every key equally likely, or Zipf (a few hot keys).
const (
	Uniform Distribution = "uniform"
	Zipf    Distribution = "zipf"
)

// chooser picks key numbers in [0, n) for one worker; it is not safe for
// concurrent use.
type chooser struct {
	r    *rand.Rand
	n    int
	zipf *rand.Zipf
}

// newChooser returns a chooser of numbers in [0, n). For Zipf, number i has
// a probability proportional to 1/(1+i)^s (s > 1): number 0 is the hottest.
func newChooser(seed int64, n int, dist Distribution, s float64) (*chooser, error) {
	r := rand.New(rand.NewSource(seed))
	c := &chooser{r: r, n: n}
	switch dist {
	case Uniform, "":
	case Zipf:
		if !(s > 1) {
			return nil, fmt.Errorf("zipf s %v: must be greater than 1", s)
		}
		c.zipf = rand.NewZipf(r, s, 1, uint64(n-1))
		if c.zipf == nil {
			return nil, fmt.Errorf("zipf s %v: invalid parameters", s)
		}
	default:
		return nil, fmt.Errorf("distribution %q: want uniform or zipf", dist)
	}
	return c, nil
}

func (c *chooser) next() int {
	if c.zipf != nil {
		return int(c.zipf.Uint64())
	}
	return c.r.Intn(c.n)
}
