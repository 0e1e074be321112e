package admin

import (
	"context"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"leadmaster/engine"
)

// metrics are the server's Prometheus metrics, in a registry of its own
// (no global state: tests build many servers).
type metrics struct {
	reg                               *prometheus.Registry
	requests                          *prometheus.CounterVec
	duration                          *prometheus.HistogramVec
	authFailures                      prometheus.Counter
	sseClients                        prometheus.Gauge
	importsRunning                    prometheus.Gauge
	importedRows                      prometheus.Counter
	webhookDelivered, webhookFailures prometheus.Counter
	handler                           fiber.Handler
}

func newMetrics(s *Server) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "leadmaster_http_requests_total", Help: "Admin API requests by route and status."}, []string{"method", "route", "status"})
	m.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "leadmaster_http_request_duration_seconds", Help: "Admin API request latency.", Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1, 5, 30}}, []string{"method", "route"})
	m.authFailures = prometheus.NewCounter(prometheus.CounterOpts{Name: "leadmaster_auth_failures_total", Help: "Requests refused for a missing or bad token."})
	m.sseClients = prometheus.NewGauge(prometheus.GaugeOpts{Name: "leadmaster_sse_clients", Help: "Open server-sent-event streams."})
	m.importsRunning = prometheus.NewGauge(prometheus.GaugeOpts{Name: "leadmaster_imports_running", Help: "Envío uploads being imported."})
	m.importedRows = prometheus.NewCounter(prometheus.CounterOpts{Name: "leadmaster_imported_envios_total", Help: "Envíos accepted by imports."})
	m.webhookDelivered = prometheus.NewCounter(prometheus.CounterOpts{Name: "leadmaster_webhook_deliveries_total", Help: "Webhook requests the receiver acknowledged."})
	m.webhookFailures = prometheus.NewCounter(prometheus.CounterOpts{Name: "leadmaster_webhook_failures_total", Help: "Webhook requests that failed (retried later)."})
	dropped := prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "leadmaster_events_dropped_total", Help: "Live events lost by slow subscribers."}, func() float64 { return float64(s.eng.Events().Dropped()) })
	m.reg.MustRegister(m.requests, m.duration, m.authFailures, m.sseClients, m.importsRunning, m.importedRows, m.webhookDelivered, m.webhookFailures, dropped,
		&storeCollector{s: s},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.handler = adaptor.HTTPHandler(promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorLog: nil}))
	return m
}

func (m *metrics) observe(method, route string, status int, d time.Duration) {
	m.requests.WithLabelValues(method, route, strconv.Itoa(status)).Inc()
	m.duration.WithLabelValues(method, route).Observe(d.Seconds())
}

// handleMetrics handles "GET /metrics" (Prometheus text format).
func (s *Server) handleMetrics(c *fiber.Ctx) error { return s.met.handler(c) }

// storeCollector reads the campaign counters and session states at scrape
// time: the store is the source of truth, nothing is double-counted.
type storeCollector struct{ s *Server }

var (
	descEnvios   = prometheus.NewDesc("leadmaster_envios", "Envíos per campaign and state.", []string{"cliente", "campana", "estado"}, nil)
	descCampaign = prometheus.NewDesc("leadmaster_campaign_info", "Campaigns by status (value 1).", []string{"cliente", "campana", "status"}, nil)
	descSession  = prometheus.NewDesc("leadmaster_session_ready", "1 when the cliente's WhatsApp session is READY.", []string{"cliente", "state"}, nil)
	descReach    = prometheus.NewDesc("leadmaster_reach_locked", "1 while WhatsApp has locked the cliente's number out of new chats (463 / reach-out timelock).", []string{"cliente", "origen"}, nil)
	descBlocked  = prometheus.NewDesc("leadmaster_send_blocked", "1 while the cliente's sending is paused, by reason (sesion, cortacircuito, bloqueo_nuevos, almacenamiento, disco_lleno, ventana, cupo_diario, tope_por_hora, tope_diario).", []string{"cliente", "reason"}, nil)
	descDiskFree = prometheus.NewDesc("leadmaster_data_disk_free_bytes", "Free bytes on the data file's disk.", nil, nil)
	descReachEnd = prometheus.NewDesc("leadmaster_reach_locked_until_seconds", "Unix time the cliente's reach lock ends (0 when none holds).", []string{"cliente"}, nil)
)

func (sc *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descEnvios
	ch <- descCampaign
	ch <- descSession
	ch <- descReach
	ch <- descReachEnd
	ch <- descBlocked
	ch <- descDiskFree
}

func (sc *storeCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s := sc.s
	camps, err := s.data.Campaigns(ctx, "")
	if err != nil {
		s.log.Error("metrics: campaigns", "err", err)
		return
	}
	for _, camp := range camps {
		ch <- prometheus.MustNewConstMetric(descCampaign, prometheus.GaugeValue, 1, camp.Cliente, camp.ID, string(camp.Status))
		st, err := s.eng.CampaignStats(ctx, camp.ID)
		if err != nil {
			continue
		}
		for _, state := range engine.States {
			ch <- prometheus.MustNewConstMetric(descEnvios, prometheus.GaugeValue, float64(st.Counts[state]), camp.Cliente, camp.ID, string(state))
		}
	}
	cls, err := s.data.Clientes(ctx)
	if err != nil {
		return
	}
	for _, cl := range cls {
		l, holds := s.eng.ReachHolding(cl.ID)
		locked, until := 0.0, 0.0
		if holds {
			locked, until = 1, float64(l.Until.Unix())
		}
		ch <- prometheus.MustNewConstMetric(descReach, prometheus.GaugeValue, locked, cl.ID, l.Source)
		ch <- prometheus.MustNewConstMetric(descReachEnd, prometheus.GaugeValue, until, cl.ID)
		if st := s.eng.SendState(cl.ID); st.Estado == engine.SendingPaused {
			ch <- prometheus.MustNewConstMetric(descBlocked, prometheus.GaugeValue, 1, cl.ID, st.Motivo)
		}
	}
	if free, ok := s.eng.FreeSpace(); ok {
		ch <- prometheus.MustNewConstMetric(descDiskFree, prometheus.GaugeValue, float64(free))
	}
	if s.sess == nil {
		return
	}
	for _, cl := range cls {
		ev := s.sess.State(cl.ID)
		v := 0.0
		if ev.State == engine.SessionReady {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(descSession, prometheus.GaugeValue, v, cl.ID, string(ev.State))
	}
}
