package server

import (
	"bufio"
	"math"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// Metrics, served at GET /metrics in the Prometheus text exposition
// format, version 0.0.4, written by hand (the relay takes no new module).
// Every counter is a sync/atomic value bumped on the request's own
// goroutine: no lock is taken per request. Label values are fixed enums
// only (route patterns, status classes, refusal reasons): never a mailbox,
// a user, a device, a token or an address, so the metrics tell a compelled
// operator nothing about who talks to whom. examples/relay/README.md lists
// every metric.

// reason is why a request was refused: the reason label of
// sealpost_relay_refusals_total.
type reason uint8

const (
	reasonNone reason = iota
	reasonMalformed
	reasonUnauthorized
	reasonStale
	reasonReplayed
	reasonForbidden
	reasonNotFound
	reasonConflict
	reasonTooLarge
	reasonRangeNotSatisfiable
	reasonRateLimited
	reasonMailboxFull
	reasonStorageFull
	reasonNATSUnavailable
	reasonTooManyConnections
	reasonDraining
	reasonOther
	numReasons
)

var reasonNames = [numReasons]string{
	reasonNone:                "",
	reasonMalformed:           "malformed",
	reasonUnauthorized:        "unauthorized",
	reasonStale:               "stale",
	reasonReplayed:            "replayed",
	reasonForbidden:           "forbidden",
	reasonNotFound:            "not_found",
	reasonConflict:            "conflict",
	reasonTooLarge:            "too_large",
	reasonRangeNotSatisfiable: "range_not_satisfiable",
	reasonRateLimited:         "rate_limited",
	reasonMailboxFull:         "mailbox_full",
	reasonStorageFull:         "storage_full",
	reasonNATSUnavailable:     "nats_unavailable",
	reasonTooManyConnections:  "too_many_connections",
	reasonDraining:            "draining",
	reasonOther:               "other",
}

// reasonOf is the reason of a refusal with this status whose handler
// named none: the status says it, except for the 503s and 507s that name
// theirs (refuse).
func reasonOf(status int) reason {
	switch status {
	case http.StatusBadRequest:
		return reasonMalformed
	case http.StatusUnauthorized:
		return reasonUnauthorized
	case http.StatusForbidden:
		return reasonForbidden
	case http.StatusNotFound:
		return reasonNotFound
	case http.StatusConflict:
		return reasonConflict
	case http.StatusRequestEntityTooLarge:
		return reasonTooLarge
	case http.StatusRequestedRangeNotSatisfiable:
		return reasonRangeNotSatisfiable
	case http.StatusTooManyRequests:
		return reasonRateLimited
	case http.StatusInsufficientStorage:
		return reasonStorageFull
	case http.StatusServiceUnavailable:
		return reasonNATSUnavailable
	}
	return reasonOther
}

// refuse names the reason of the refusal w is about to answer, for the
// metrics; without it the status decides (reasonOf).
func refuse(w http.ResponseWriter, why reason) {
	if sw, ok := w.(*statusWriter); ok {
		sw.reason = why
	}
}

// The routes of the HTTP API, the route label: the patterns registered,
// and "unmatched" for a request none matched (404 or 405 from the mux).
var routeNames = []string{
	"PUT /v1/bundles/{user}/{device}",
	"POST /v1/bundles/{user}/{device}",
	"GET /v1/bundles/{user}/{device}",
	"POST /v1/envelopes",
	"POST /v1/envelopes/batch",
	"PUT /v1/accounts/{user}/devices",
	"GET /v1/accounts/{user}/devices",
	"GET /v1/mailboxes/{mailbox}",
	"PUT /v1/mailboxes/{mailbox}/owner",
	"DELETE /v1/mailboxes/{mailbox}",
	"POST /v1/blobs",
	"HEAD /v1/blobs/{id}/upload",
	"PATCH /v1/blobs/{id}/upload",
	"GET /v1/blobs/{id}",
	"GET /healthz",
	"GET /livez",
	"GET /readyz",
	"GET /metrics",
	"unmatched",
}

// opsRoutes are the last routes but "unmatched": probes and scrapes. They
// and "unmatched" are not logged (a load balancer asks every few seconds,
// scanners ask for anything), as before only the API's requests are.
const opsRoutes = 4

var routeIndex = func() map[string]int {
	m := make(map[string]int, len(routeNames))
	for i, n := range routeNames {
		m[n] = i
	}
	return m
}()

// routeOf returns the index of a request's pattern in routeNames.
func routeOf(pattern string) int {
	if i, ok := routeIndex[pattern]; ok {
		return i
	}
	return len(routeNames) - 1
}

// logged reports whether requests of the route are logged: the API's.
func logged(route int) bool { return route < len(routeNames)-1-opsRoutes }

// histogram is a Prometheus histogram on atomics: a count per bucket (not
// cumulative: cumulated when written) and the sum, in the unit of the
// bounds, scaled by scale into an integer.
type histogram struct {
	bounds []float64
	counts []atomic.Uint64 // len(bounds)+1: the last is above every bound
	sum    atomic.Uint64   // in units of 1/scale
	scale  float64
}

func newHistogram(scale float64, bounds ...float64) *histogram {
	return &histogram{bounds: bounds, counts: make([]atomic.Uint64, len(bounds)+1), scale: scale}
}

func (h *histogram) observe(v float64) {
	i := 0
	for i < len(h.bounds) && v > h.bounds[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sum.Add(uint64(math.Round(v * h.scale)))
}

// observeSince observes the seconds since start.
func (h *histogram) observeSince(start time.Time) { h.observe(time.Since(start).Seconds()) }

// metrics is every counter of a relay.
type metrics struct {
	accepted       atomic.Uint64 // envelopes stored
	delivered      atomic.Uint64 // envelopes written to a WebSocket
	acked          atomic.Uint64 // envelopes acknowledged and deleted
	bytesIn        atomic.Uint64 // bytes of envelopes stored
	bytesOut       atomic.Uint64 // bytes of envelopes written to a WebSocket
	subscriptions  atomic.Int64  // WebSockets open
	refusals       [numReasons]atomic.Uint64
	requests       [][6]atomic.Uint64 // by route and status class: 0 for none, 1xx to 5xx
	bytesRead      []atomic.Uint64    // request body bytes read, by route
	bytesWritten   []atomic.Uint64    // response body bytes written, by route
	depth          *histogram         // envelopes waiting when a mailbox is opened
	publishLatency *histogram         // seconds of an envelope's JetStream publish
	ackLatency     *histogram         // seconds of an acknowledged envelope's DeleteMsg
	stalls         atomic.Uint64      // stalled deliveries whose consumer was replaced
	deleteFailures atomic.Uint64      // acknowledged envelopes whose DeleteMsg failed
}

func newMetrics() *metrics {
	lat := []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5}
	return &metrics{
		requests:       make([][6]atomic.Uint64, len(routeNames)),
		bytesRead:      make([]atomic.Uint64, len(routeNames)),
		bytesWritten:   make([]atomic.Uint64, len(routeNames)),
		depth:          newHistogram(1, 0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000),
		publishLatency: newHistogram(1e9, lat...),
		ackLatency:     newHistogram(1e9, lat...),
	}
}

// request counts a request answered with status, and its refusal.
func (m *metrics) request(route, status int, why reason) {
	class := status / 100
	if class < 1 || class > 5 {
		class = 0
	}
	m.requests[route][class].Add(1)
	if status >= 400 {
		if why == reasonNone {
			why = reasonOf(status)
		}
		m.refusals[why].Add(1)
	}
}

// serveMetrics writes every metric in the text exposition format.
func (r *Relay) serveMetrics(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	m := r.metrics
	b := bufio.NewWriter(w)
	counter := func(name, help string, v uint64) {
		head(b, name, "counter", help)
		sample(b, name, "", "", float64(v))
	}
	gauge := func(name, help string, v float64) {
		head(b, name, "gauge", help)
		sample(b, name, "", "", v)
	}
	counter("sealpost_relay_envelopes_accepted_total", "Envelopes stored in a mailbox (answered 202, alone or in a batch; retries JetStream dropped as duplicates not counted).", m.accepted.Load())
	counter("sealpost_relay_envelopes_delivered_total", "Envelopes written to a mailbox WebSocket (redeliveries included).", m.delivered.Load())
	counter("sealpost_relay_envelopes_acked_total", "Envelopes acknowledged by a client and deleted from their mailbox.", m.acked.Load())
	counter("sealpost_relay_envelope_bytes_in_total", "Bytes of the envelopes stored.", m.bytesIn.Load())
	counter("sealpost_relay_envelope_bytes_out_total", "Bytes of the envelopes written to mailbox WebSockets.", m.bytesOut.Load())

	head(b, "sealpost_relay_refusals_total", "counter", "Requests answered with an error (4xx, 5xx), by reason.")
	for i := reasonNone + 1; i < numReasons; i++ {
		sample(b, "sealpost_relay_refusals_total", "reason", reasonNames[i], float64(m.refusals[i].Load()))
	}

	head(b, "sealpost_relay_http_requests_total", "counter", "HTTP requests answered, by route pattern and status class (a mailbox WebSocket counts when it ends, as 1xx).")
	classes := [6]string{"none", "1xx", "2xx", "3xx", "4xx", "5xx"}
	for route, name := range routeNames {
		for class := range classes {
			if v := m.requests[route][class].Load(); v > 0 {
				b.WriteString("sealpost_relay_http_requests_total{route=")
				b.WriteString(strconv.Quote(name))
				b.WriteString(",code=")
				b.WriteString(strconv.Quote(classes[class]))
				b.WriteString("} ")
				b.WriteString(strconv.FormatUint(v, 10))
				b.WriteByte('\n')
			}
		}
	}

	for _, c := range []struct {
		name, help string
		v          []atomic.Uint64
	}{
		{"sealpost_relay_http_request_bytes_total", "Request body bytes read, by route pattern (blob uploads included; not WebSocket frames).", m.bytesRead},
		{"sealpost_relay_http_response_bytes_total", "Response body bytes written, by route pattern (blob downloads included; not WebSocket frames).", m.bytesWritten},
	} {
		head(b, c.name, "counter", c.help)
		for route, name := range routeNames {
			if v := c.v[route].Load(); v > 0 {
				sample(b, c.name, "route", name, float64(v))
			}
		}
	}

	counter("sealpost_relay_delivery_stalls_total", "Mailbox deliveries found stalled (nothing delivered for -stall-timeout while the mailbox held envelopes not delivered) and given a new consumer.", m.stalls.Load())
	counter("sealpost_relay_ack_delete_failures_total", "Acknowledged envelopes whose DeleteMsg failed: not confirmed, left outstanding.", m.deleteFailures.Load())
	gauge("sealpost_relay_subscriptions_open", "Mailbox WebSockets open on this relay.", float64(m.subscriptions.Load()))
	writeHistogram(b, "sealpost_relay_mailbox_depth", "Envelopes waiting in a mailbox when a WebSocket opens it (the new consumer's pending count).", m.depth)
	writeHistogram(b, "sealpost_relay_nats_publish_seconds", "Time from publishing an envelope to JetStream's acknowledgement (stored, replicated).", m.publishLatency)
	writeHistogram(b, "sealpost_relay_nats_ack_delete_seconds", "Time to delete an acknowledged envelope from its mailbox (DeleteMsg).", m.ackLatency)

	connected, draining := 0.0, 0.0
	if r.nc.IsConnected() {
		connected = 1
	}
	if r.draining.Load() {
		draining = 1
	}
	gauge("sealpost_relay_nats_connected", "1 while the relay's NATS connection is up.", connected)
	counter("sealpost_relay_nats_reconnects_total", "Times the NATS connection was re-established.", r.nc.Stats().Reconnects)
	gauge("sealpost_relay_draining", "1 once the relay has begun a graceful stop (readyz answers 503).", draining)
	_ = b.Flush() // the scraper went away: nothing more to tell
}

func head(b *bufio.Writer, name, typ, help string) {
	b.WriteString("# HELP ")
	b.WriteString(name)
	b.WriteByte(' ')
	b.WriteString(help)
	b.WriteString("\n# TYPE ")
	b.WriteString(name)
	b.WriteByte(' ')
	b.WriteString(typ)
	b.WriteByte('\n')
}

// sample writes one sample line, with one label when label is not empty.
// Label values are the fixed strings of this file: none needs escaping
// beyond what strconv.Quote does for ASCII.
func sample(b *bufio.Writer, name, label, value string, v float64) {
	b.WriteString(name)
	if label != "" {
		b.WriteByte('{')
		b.WriteString(label)
		b.WriteByte('=')
		b.WriteString(strconv.Quote(value))
		b.WriteByte('}')
	}
	b.WriteByte(' ')
	b.WriteString(formatFloat(v))
	b.WriteByte('\n')
}

func formatFloat(v float64) string {
	if math.IsInf(v, 1) {
		return "+Inf"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

func writeHistogram(b *bufio.Writer, name, help string, h *histogram) {
	head(b, name, "histogram", help)
	var cum uint64
	for i, bound := range h.bounds {
		cum += h.counts[i].Load()
		sample(b, name+"_bucket", "le", formatFloat(bound), float64(cum))
	}
	cum += h.counts[len(h.bounds)].Load()
	sample(b, name+"_bucket", "le", "+Inf", float64(cum))
	sample(b, name+"_sum", "", "", float64(h.sum.Load())/h.scale)
	sample(b, name+"_count", "", "", float64(cum))
}
