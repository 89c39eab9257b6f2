package demo

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

const (
	sampleOrder  = 1 // never deleted
	sampleSensor = 1 // no sensor is ever deleted
	sampleSite   = 12
	sampleProbe  = 7 // readings "12-7"; no reading is ever deleted

	seedOrders  = 5000  // orders written by Seed, and the live count Run aims at
	seedSensors = 200   // sensors, ids 1..seedSensors
	maxOrderID  = 99999 // ids are 5 digits
	customers   = 2000

	// The readings topic's population: sites 1..readingSites, each with
	// sensors 1..sensorsPerSite, all written by Seed and none ever deleted.
	readingSites   = 20
	sensorsPerSite = 50
	seedReadings   = readingSites * sensorsPerSite

	// doneTarget is how many delivered or cancelled orders Run aims to keep
	// before deleting them, oldest first.
	doneTarget = 250
	// reuseChance is the chance that a new order takes a deleted id rather
	// than a fresh one.
	reuseChance = 0.3
	// sensorShare and readingShare are the shares of Run's records that go
	// to the sensors and the readings topics; the rest are orders.
	sensorShare  = 0.3
	readingShare = 0.3
)

// status is an order's status. The order of the constants is the order an
// order moves through; cancelled and delivered are both final.
type status int

const (
	created status = iota
	paid
	shipped
	delivered
	cancelled
)

var statusNames = [...]string{"created", "paid", "shipped", "delivered", "cancelled"}

func (s status) String() string { return statusNames[s] }

func (s status) final() bool { return s == delivered || s == cancelled }

type product struct {
	sku   string
	name  string
	cents int64
}

var catalog = []product{
	{"SKU-1001", "USB-C cable 1m", 899},
	{"SKU-1002", "Wireless mouse", 2499},
	{"SKU-1003", "Mechanical keyboard", 8999},
	{"SKU-1004", "USB-C hub", 3450},
	{"SKU-1005", "27-inch monitor", 24900},
	{"SKU-1006", "Laptop stand", 3999},
	{"SKU-1007", "Noise-cancelling headphones", 19900},
	{"SKU-1008", "Webcam 1080p", 5999},
	{"SKU-1009", "Desk lamp", 2750},
	{"SKU-1010", "Notebook A5", 450},
	{"SKU-1011", "Gel pens (10)", 799},
	{"SKU-1012", "Ergonomic chair", 32900},
	{"SKU-1013", "Standing desk mat", 4900},
	{"SKU-1014", "Portable SSD 1TB", 10900},
	{"SKU-1015", "Coffee beans 1kg", 2290},
	{"SKU-1016", "Water bottle", 1500},
}

var currencies = []string{"EUR", "USD", "GBP"}

var sites = []string{"berlin-dc1", "lyon-plant", "austin-lab", "osaka-warehouse", "sao-paulo-dc2"}

// sensorKind is a kind of sensor, with its unit, the range its value stays
// in and the typical size of one step of its random walk.
type sensorKind struct {
	name, unit string
	lo, hi     float64
	step       float64
}

var kinds = []sensorKind{
	{"temperature", "°C", 15, 35, 0.1},
	{"humidity", "%", 20, 80, 0.4},
	{"pressure", "hPa", 980, 1040, 0.3},
}

// places are the labels of the readings' sensors, some of them not ASCII.
// A cold place's temperature stays around -18°C.
var places = []struct {
	label string
	cold  bool
}{
	{"hall", false}, {"roof", false}, {"office", false}, {"lab", false},
	{"server room", false}, {"loading bay", false}, {"freezer", true},
	{"café", false}, {"Kühlraum", true}, {"倉庫 3F", false}, {"склад", false},
	{"salle B", false},
}

// Reading statuses, as the sensor-value record has them.
const (
	statusOK byte = iota
	statusDegraded
	statusOffline
)

// orderValue is the JSON value of an order record.
type orderValue struct {
	ID        string      `json:"id"`
	Customer  string      `json:"customer"`
	Items     []orderItem `json:"items"`
	Total     float64     `json:"total"`
	Currency  string      `json:"currency"`
	Status    string      `json:"status"`
	CreatedAt string      `json:"created_at"`
	UpdatedAt string      `json:"updated_at"`
}

type orderItem struct {
	SKU   string  `json:"sku"`
	Name  string  `json:"name"`
	Qty   int     `json:"qty"`
	Price float64 `json:"price"`
}

// readingValue is the JSON value of a sensor record.
type readingValue struct {
	SensorID int64   `json:"sensor_id"`
	Site     string  `json:"site"`
	Kind     string  `json:"kind"`
	Value    float64 `json:"value"`
	Unit     string  `json:"unit"`
	TS       string  `json:"ts"`
}

// order is a live order: written and not deleted.
type order struct {
	id     int
	v      orderValue
	status status
	// active is the order's index in Producer.active, or -1 once final.
	active int
}

type sensor struct {
	id    int64
	site  string
	kind  int // index in kinds
	value float64
}

// probe is one sensor of the readings topic. Its temperature and humidity
// walk around a base of their own.
type probe struct {
	site     uint16
	sensor   uint32
	label    string
	status   byte
	temp     int32 // hundredths of a degree Celsius
	humidity uint32
	baseTemp float64
	baseHum  float64
}

// Producer writes the demo data. Seed and Run must not be called
// concurrently; Stats may be called at any time.
type Producer struct {
	cl                          *kgo.Client
	orders, sensorsT, readingsT string
	rng                         *rand.Rand
	promise                     func(*kgo.Record, error)

	ord    []*order // by id; nil if the id is not live
	live   int      // non-nil entries of ord
	active []int    // ids of orders not final yet
	done   []int    // ids of final orders, oldest first, to delete
	free   []int    // deleted ids that a new order may take
	next   int      // smallest id never used
	sens   []sensor
	probes []probe // site-major: sites 1..readingSites, sensors 1..sensorsPerSite

	mu       sync.Mutex
	err      error // first produce error
	produced atomic.Int64
	deleted  atomic.Int64
}

// NewProducer returns a producer that writes with cl to the topics of o.
// Its data set is a function of seed alone (apart from timestamps), so two
// runs with the same seed write the same keys and values. cl must be made
// with kgo.RecordPartitioner(o.Partitioner()): iqengine finds a key's
// partition as that partitioner places it (Seed and Run refuse another).
func NewProducer(cl *kgo.Client, seed uint64, o Options) *Producer {
	o = o.withDefaults()
	p := &Producer{
		cl:        cl,
		orders:    o.OrdersTopic,
		sensorsT:  o.SensorsTopic,
		readingsT: o.ReadingsTopic,
		rng:       rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		ord:       make([]*order, maxOrderID+1),
		next:      1,
	}
	p.promise = p.onProduced
	for i := range seedSensors {
		k := i % len(kinds)
		kd := kinds[k]
		p.sens = append(p.sens, sensor{
			id:    int64(i + 1),
			site:  sites[(i/len(kinds))%len(sites)],
			kind:  k,
			value: kd.lo + (kd.hi-kd.lo)*(0.3+0.4*p.rng.Float64()),
		})
	}
	for site := 1; site <= readingSites; site++ {
		for s := 1; s <= sensorsPerSite; s++ {
			pl := places[p.rng.IntN(len(places))]
			pr := probe{site: uint16(site), sensor: uint32(s), label: pl.label,
				baseTemp: 1700 + 1000*p.rng.Float64(), baseHum: 300 + 300*p.rng.Float64()}
			if pl.cold {
				pr.baseTemp = -1800 + 200*(p.rng.Float64()-0.5)
			}
			pr.temp = int32(math.Round(pr.baseTemp + 150*p.rng.NormFloat64()))
			pr.humidity = uint32(math.Round(pr.baseHum))
			switch r := p.rng.Float64(); {
			case r < 0.01:
				pr.status = statusOffline
			case r < 0.06:
				pr.status = statusDegraded
			}
			p.probes = append(p.probes, pr)
		}
	}
	return p
}

// checkClient refuses a client whose partitioner is not o.Partitioner():
// readings would land where the node does not look for them.
func (p *Producer) checkClient() error {
	if pr, ok := p.cl.OptValue(kgo.RecordPartitioner).(partitioner); !ok || pr.readings != p.readingsT {
		return errors.New("demo: the producer's client must be made with kgo.RecordPartitioner(Options.Partitioner())")
	}
	return nil
}

// Stats returns how many records the brokers acknowledged, and how many of
// those were tombstones.
func (p *Producer) Stats() (produced, deleted int64) {
	return p.produced.Load(), p.deleted.Load()
}

// Seed writes the initial data set and waits until the brokers have it: a
// first reading of every sensor (ids 1 to 200), a first record of every
// readings sensor (sites 1 to 20, sensors 1 to 50 each) and orders o-00001
// to o-05000 in various statuses. It forgets the orders of any earlier Seed
// or Run. It returns the first error of any record.
func (p *Producer) Seed(ctx context.Context) error {
	if err := p.checkClient(); err != nil {
		return err
	}
	clear(p.ord)
	p.live, p.active, p.done, p.free = 0, nil, nil, nil
	now := time.Now()
	for i := range p.sens {
		p.sendReading(ctx, &p.sens[i], now)
	}
	for i := range p.probes {
		p.sendProbe(ctx, &p.probes[i], now)
	}
	for id := 1; id <= seedOrders; id++ {
		at := now.Add(-time.Duration(p.rng.Int64N(int64(72 * time.Hour))))
		o := p.newOrder(id, at)
		var st status
		if id != sampleOrder {
			switch r := p.rng.Float64(); {
			case r < 0.25:
				st = created
			case r < 0.50:
				st = paid
			case r < 0.80:
				st = shipped
			case r < 0.97:
				st = delivered
			default:
				st = cancelled
			}
		}
		// Each step took up to a few hours, but never into the future.
		updated := at
		for range int(min(st, delivered)) {
			updated = updated.Add(time.Duration(p.rng.Int64N(int64(4 * time.Hour))))
		}
		if updated.After(now) {
			updated = now
		}
		p.setStatus(o, st, updated)
		p.sendOrder(ctx, o)
	}
	p.next = seedOrders + 1
	if err := p.cl.Flush(ctx); err != nil {
		return fmt.Errorf("demo: seed: %w", err)
	}
	return p.firstErr()
}

// Run keeps the data changing at about rate records a second until ctx ends:
// new orders, orders moving on, old orders deleted, sensor readings, and
// readings records with a new temperature and humidity and now and then a
// new status. Records are produced asynchronously and flushed every 50ms.
// When ctx ends, records not yet sent may be dropped; Run waits briefly for
// those in flight and returns nil, or the first produce error seen before. A
// produce error ends Run early.
func (p *Producer) Run(ctx context.Context, rate int) error {
	if rate <= 0 {
		return fmt.Errorf("demo: rate %d is not positive", rate)
	}
	if err := p.checkClient(); err != nil {
		return err
	}
	if err := p.firstErr(); err != nil {
		return err
	}
	const tick = 50 * time.Millisecond
	t := time.NewTicker(tick)
	defer t.Stop()
	start := time.Now()
	var sent int64
	for {
		select {
		case <-ctx.Done():
			return p.stop()
		case <-t.C:
		}
		due := int64(float64(rate)*time.Since(start).Seconds()) - sent
		// After a stall (a slow broker, a suspended laptop), catch up at
		// most one second's worth rather than bursting.
		if due > int64(rate) {
			sent += due - int64(rate)
			due = int64(rate)
		}
		for range due {
			if ctx.Err() != nil {
				break
			}
			p.step(ctx)
			sent++
		}
		if err := p.cl.Flush(ctx); err != nil {
			return p.stop()
		}
		if err := p.firstErr(); err != nil {
			return err
		}
	}
}

// stop waits a little for records in flight when Run's context has ended.
func (p *Producer) stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = p.cl.Flush(ctx)
	return p.firstErr()
}

// step writes one record.
func (p *Producer) step(ctx context.Context) {
	switch r := p.rng.Float64(); {
	case r < sensorShare:
		s := &p.sens[p.rng.IntN(len(p.sens))]
		p.walk(s)
		p.sendReading(ctx, s, time.Now())
		return
	case r < sensorShare+readingShare:
		pr := &p.probes[p.rng.IntN(len(p.probes))]
		p.update(pr)
		p.sendProbe(ctx, pr, time.Now())
		return
	}
	// Aim at seedOrders live orders and doneTarget final ones: an order
	// takes about five records (create, two or three moves, delete), so
	// creations and deletions each get about a fifth of the records, more
	// when below target and less when above.
	pCreate := clamp(0.2*seedOrders/float64(max(p.live, 1)), 0.05, 0.9)
	pDelete := 0.0
	if len(p.done) > 0 {
		pDelete = clamp(0.2*float64(len(p.done))/doneTarget, 0.02, 0.4)
	}
	now := time.Now()
	switch r := p.rng.Float64(); {
	case r < pDelete:
		p.deleteOldest(ctx)
	case r < pDelete+pCreate || len(p.active) == 0:
		if o := p.create(now); o != nil {
			p.sendOrder(ctx, o)
			return
		}
		fallthrough
	default:
		if len(p.active) == 0 {
			p.deleteOldest(ctx)
			return
		}
		o := p.ord[p.active[p.rng.IntN(len(p.active))]]
		p.setStatus(o, p.nextStatus(o.status), now)
		p.sendOrder(ctx, o)
	}
}

// create makes a new order, on a deleted id now and then, or returns nil if
// every id is taken.
func (p *Producer) create(now time.Time) *order {
	var id int
	switch {
	case len(p.free) > 0 && (p.next > maxOrderID || p.rng.Float64() < reuseChance):
		i := p.rng.IntN(len(p.free))
		id = p.free[i]
		p.free[i] = p.free[len(p.free)-1]
		p.free = p.free[:len(p.free)-1]
	case p.next <= maxOrderID:
		id = p.next
		p.next++
	default:
		return nil
	}
	o := p.newOrder(id, now)
	p.setStatus(o, created, now)
	return o
}

// newOrder makes and registers an order with random contents and no status
// set yet.
func (p *Producer) newOrder(id int, created time.Time) *order {
	cust := p.rng.IntN(customers) + 1
	o := &order{id: id, active: -1, v: orderValue{
		ID:        orderKey(id),
		Customer:  fmt.Sprintf("c-%04d", cust),
		Currency:  currencies[cust%len(currencies)],
		CreatedAt: created.UTC().Format(time.RFC3339),
	}}
	n := 1 + p.rng.IntN(4)
	var cents int64
	for _, k := range p.rng.Perm(len(catalog))[:n] {
		pr := catalog[k]
		qty := 1
		if p.rng.IntN(4) == 0 {
			qty += 1 + p.rng.IntN(3)
		}
		cents += int64(qty) * pr.cents
		o.v.Items = append(o.v.Items, orderItem{SKU: pr.sku, Name: pr.name, Qty: qty, Price: float64(pr.cents) / 100})
	}
	o.v.Total = float64(cents) / 100
	p.ord[id] = o
	p.live++
	return o
}

// nextStatus picks where an order goes from s, which is not final.
func (p *Producer) nextStatus(s status) status {
	switch s {
	case created:
		if p.rng.Float64() < 0.12 {
			return cancelled
		}
		return paid
	case paid:
		if p.rng.Float64() < 0.05 {
			return cancelled
		}
		return shipped
	default:
		return delivered
	}
}

// setStatus sets o's status and keeps the active and done lists right. The
// sample order never enters the done list, so it is never deleted.
func (p *Producer) setStatus(o *order, s status, now time.Time) {
	o.status = s
	o.v.Status = s.String()
	o.v.UpdatedAt = now.UTC().Format(time.RFC3339)
	id := o.id
	switch {
	case !s.final() && o.active < 0:
		o.active = len(p.active)
		p.active = append(p.active, id)
	case s.final() && o.active >= 0:
		last := p.active[len(p.active)-1]
		p.active[o.active] = last
		p.ord[last].active = o.active
		p.active = p.active[:len(p.active)-1]
		o.active = -1
		fallthrough
	case s.final():
		if id != sampleOrder {
			p.done = append(p.done, id)
		}
	}
}

// deleteOldest writes a tombstone for the order that has been final longest.
func (p *Producer) deleteOldest(ctx context.Context) {
	if len(p.done) == 0 {
		return
	}
	id := p.done[0]
	p.done = p.done[1:]
	p.ord[id] = nil
	p.live--
	p.free = append(p.free, id)
	p.send(ctx, p.orders, []byte(orderKey(id)), nil)
}

// walk moves a sensor's value one small random step, pulled gently towards
// the middle of its range and kept inside it.
func (p *Producer) walk(s *sensor) {
	kd := kinds[s.kind]
	mid := (kd.lo + kd.hi) / 2
	s.value += p.rng.NormFloat64()*kd.step + (mid-s.value)*0.002
	s.value = clamp(s.value, kd.lo, kd.hi)
}

// update moves a readings sensor on: a random walk of its temperature and
// humidity around their bases, and now and then a change of status.
func (p *Producer) update(pr *probe) {
	t := float64(pr.temp) + 8*p.rng.NormFloat64() + (pr.baseTemp-float64(pr.temp))*0.01
	pr.temp = int32(math.Round(clamp(t, -4000, 6000)))
	h := float64(pr.humidity) + 4*p.rng.NormFloat64() + (pr.baseHum-float64(pr.humidity))*0.01
	pr.humidity = uint32(math.Round(clamp(h, 0, 1000)))
	r := p.rng.Float64()
	switch pr.status {
	case statusOK:
		switch {
		case r < 0.003:
			pr.status = statusOffline
		case r < 0.013:
			pr.status = statusDegraded
		}
	case statusDegraded:
		switch {
		case r < 0.02:
			pr.status = statusOffline
		case r < 0.17:
			pr.status = statusOK
		}
	case statusOffline:
		if r < 0.1 {
			pr.status = statusOK
		}
	}
}

func (p *Producer) sendOrder(ctx context.Context, o *order) {
	b, err := json.Marshal(&o.v)
	if err != nil {
		panic(err) // plain structs of strings and numbers always marshal
	}
	p.send(ctx, p.orders, []byte(o.v.ID), b)
}

func (p *Producer) sendReading(ctx context.Context, s *sensor, now time.Time) {
	kd := kinds[s.kind]
	b, err := json.Marshal(readingValue{
		SensorID: s.id,
		Site:     s.site,
		Kind:     kd.name,
		Value:    math.Round(s.value*100) / 100,
		Unit:     kd.unit,
		TS:       now.UTC().Format("2006-01-02T15:04:05.000Z07:00"),
	})
	if err != nil {
		panic(err)
	}
	p.send(ctx, p.sensorsT, binary.BigEndian.AppendUint64(nil, uint64(s.id)), b)
}

func (p *Producer) sendProbe(ctx context.Context, pr *probe, now time.Time) {
	p.send(ctx, p.readingsT, readingKey(pr.site, pr.sensor), pr.value(now))
}

// readingKey is a readings key: site then sensor, big-endian.
func readingKey(site uint16, sensor uint32) []byte {
	return binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint16(make([]byte, 0, 6), site), sensor)
}

// siteOf is the site of a readings key, or of its 2-byte prefix.
func siteOf(key []byte) uint16 {
	if len(key) < 2 {
		return 0
	}
	return binary.BigEndian.Uint16(key)
}

// value is the sensor-value record: version 1, status, site, sensor, time
// in ms, temperature, humidity (all little-endian), then the label.
func (pr *probe) value(now time.Time) []byte {
	v := make([]byte, 0, 24+len(pr.label))
	v = append(v, 1, pr.status)
	v = binary.LittleEndian.AppendUint16(v, pr.site)
	v = binary.LittleEndian.AppendUint32(v, pr.sensor)
	v = binary.LittleEndian.AppendUint64(v, uint64(now.UnixMilli()))
	v = binary.LittleEndian.AppendUint32(v, uint32(pr.temp))
	v = binary.LittleEndian.AppendUint32(v, pr.humidity)
	return append(v, pr.label...)
}

// send produces one record asynchronously; the client's partitioner
// (Options.Partitioner) places it.
func (p *Producer) send(ctx context.Context, topic string, key, value []byte) {
	p.cl.Produce(ctx, &kgo.Record{Topic: topic, Key: key, Value: value}, p.promise)
}

// onProduced counts acknowledged records and keeps the first error. Records
// failed because their context ended are not errors: that is how Run stops.
func (p *Producer) onProduced(r *kgo.Record, err error) {
	if err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return
		}
		p.mu.Lock()
		if p.err == nil {
			p.err = fmt.Errorf("demo: produce to %s: %w", r.Topic, err)
		}
		p.mu.Unlock()
		return
	}
	p.produced.Add(1)
	if r.Value == nil {
		p.deleted.Add(1)
	}
}

func (p *Producer) firstErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

func orderKey(id int) string { return fmt.Sprintf("o-%05d", id) }

func clamp(v, lo, hi float64) float64 { return max(lo, min(v, hi)) }
