package plugins

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	calls      *prometheus.CounterVec   // plugin, op
	latency    *prometheus.HistogramVec // plugin, op
	faults     *prometheus.CounterVec   // plugin, kind
	rejections *prometheus.CounterVec   // plugin
	reloads    *prometheus.CounterVec   // plugin, result
	instances  *prometheus.GaugeVec     // plugin
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "iqengine_plugin_calls_total",
			Help: "Plugin calls by plugin and operation (key_to_json, value_to_json, key_from_text, partition, or transform: one batch), whatever their outcome: the denominator of iqengine_plugin_faults_total and iqengine_plugin_rejections_total."},
			[]string{"plugin", "op"}),
		// Buckets from 1µs to 1s, by fours: a pass-through serde takes
		// about a microsecond, and plugins.timeout is 1s by default.
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "iqengine_plugin_call_duration_seconds",
			Help:    "Time spent in the plugin's code per call (per batch for a transform: what plugins.timeout bounds), by plugin and operation; a call that found no free instance is not observed.",
			Buckets: prometheus.ExponentialBuckets(1e-6, 4, 11)}, []string{"plugin", "op"}),
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
	for _, c := range []prometheus.Collector{m.calls, m.latency, m.faults, m.rejections, m.reloads, m.instances} {
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
	ops       [nOps]opMetrics // those of callOps
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
	for op, label := range callOps {
		mm.ops[op] = opMetrics{calls: m.calls.WithLabelValues(name, label), latency: m.latency.WithLabelValues(name, label)}
	}
	return mm
}

// callOps are the operations counted in iqengine_plugin_calls_total, with
// their label: a serde's call, or a transform's batch (counted at
// iq_transform_begin).
var callOps = map[int]string{
	opKeyToJSON:   "key_to_json",
	opValueToJSON: "value_to_json",
	opKeyFromText: "key_from_text",
	opPartition:   "partition",
	opBegin:       "transform",
}

// opMetrics are one operation's series of one module.
type opMetrics struct {
	calls   prometheus.Counter
	latency prometheus.Observer
}

// observe records the plugin time of the call (or batch) in just ended.
func (o *opMetrics) observe(in *instance) {
	o.latency.Observe(time.Duration(in.spent.Load()).Seconds())
}
