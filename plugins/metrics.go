package plugins

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	faults     *prometheus.CounterVec // plugin, kind
	rejections *prometheus.CounterVec // plugin
	reloads    *prometheus.CounterVec // plugin, result
	instances  *prometheus.GaugeVec   // plugin
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		faults: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "iqengine_plugin_faults_total",
			Help: "Plugin calls that failed, by plugin and kind (failed, trap, timeout, memory, bad_result, bad_output, too_large, busy); the instance is replaced after every kind but failed and busy.",
		}, []string{"plugin", "kind"}),
		rejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "iqengine_plugin_rejections_total",
			Help: "Inputs a plugin refused (answered 422).",
		}, []string{"plugin"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "iqengine_plugin_reloads_total",
			Help: "New module files seen, by result: loaded, or refused (the old module keeps serving).",
		}, []string{"plugin", "result"}),
		instances: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "iqengine_plugin_instances",
			Help: "Live instances per plugin, all versions.",
		}, []string{"plugin"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.faults, m.rejections, m.reloads, m.instances} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, err
			}
		}
	}
	return m, nil
}

// moduleMetrics are one module's resolved series, so the call path does not
// look labels up.
type moduleMetrics struct {
	faults    map[Kind]prometheus.Counter
	rejected  prometheus.Counter
	loaded    prometheus.Counter
	refused   prometheus.Counter
	instances prometheus.Gauge
}

func (m *metrics) forModule(name string) moduleMetrics {
	mm := moduleMetrics{
		faults:    map[Kind]prometheus.Counter{},
		rejected:  m.rejections.WithLabelValues(name),
		loaded:    m.reloads.WithLabelValues(name, "loaded"),
		refused:   m.reloads.WithLabelValues(name, "refused"),
		instances: m.instances.WithLabelValues(name),
	}
	for _, k := range faultKinds {
		mm.faults[k] = m.faults.WithLabelValues(name, string(k))
	}
	return mm
}
