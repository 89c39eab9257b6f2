package testutil

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Metric sums the series of the family name in g whose labels include the
// given name, value pairs: their values for counters and gauges, their
// sample counts for histograms. With name ending in _sum or _count it sums
// the histogram family's sums or counts. A family or series that does not
// exist counts 0, as a counter that has not moved yet.
func Metric(t testing.TB, g prometheus.Gatherer, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatalf("gather metrics: %v", err)
	}
	var sum float64
	for _, mf := range mfs {
		field := ""
		if mf.GetName() != name {
			if mf.GetType() != dto.MetricType_HISTOGRAM {
				continue
			}
			suffix, ok := strings.CutPrefix(name, mf.GetName()+"_")
			if !ok || suffix != "sum" && suffix != "count" {
				continue
			}
			field = suffix
		}
		for _, m := range mf.GetMetric() {
			if hasLabels(m, labels) {
				sum += value(m, field)
			}
		}
	}
	return sum
}

func hasLabels(m *dto.Metric, labels []string) bool {
	for i := 0; i+1 < len(labels); i += 2 {
		found := false
		for _, l := range m.GetLabel() {
			if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func value(m *dto.Metric, field string) float64 {
	switch {
	case m.Histogram != nil && field == "sum":
		return m.GetHistogram().GetSampleSum()
	case m.Histogram != nil:
		return float64(m.GetHistogram().GetSampleCount())
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Untyped != nil:
		return m.GetUntyped().GetValue()
	}
	return 0
}

// Scrape is a Gatherer of what url (a node's /metrics) answers when it is
// gathered, for Metric: a test reads the metrics as Prometheus would.
func Scrape(url string) prometheus.Gatherer {
	return prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		resp, err := http.Get(url)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		p := expfmt.NewTextParser(model.UTF8Validation)
		byName, err := p.TextToMetricFamilies(resp.Body)
		if err != nil {
			return nil, fmt.Errorf("GET %s: %w", url, err)
		}
		out := make([]*dto.MetricFamily, 0, len(byName))
		for _, mf := range byName {
			out = append(out, mf)
		}
		return out, nil
	})
}
