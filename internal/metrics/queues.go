package metrics

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/imbee/imbee"
)

// Source is where the queue metrics are read from at each scrape: the store.
type Source interface {
	Queues(ctx context.Context) (imbee.QueueStats, error)
}

// statsTimeout bounds the database reads of one scrape, well within
// Prometheus's default scrape timeout (10 s).
const statsTimeout = 3 * time.Second

var (
	channels = []imbee.Channel{imbee.ChannelMail, imbee.ChannelSMS}
	// unsent are the states Queues counts; waiting, the ones still to send.
	unsent  = []imbee.DeliveryStatus{imbee.DeliveryQueued, imbee.DeliverySending, imbee.DeliveryFailed, imbee.DeliveryDead}
	waiting = []imbee.DeliveryStatus{imbee.DeliveryQueued, imbee.DeliverySending, imbee.DeliveryFailed}
)

// queueCollector reads the queues' backlog from the database at scrape
// time, through the status indexes, so that every server of an
// installation reports the same, whole, numbers at a cost that follows the
// backlog, not the history. (What was sent is counted as it happens:
// imbee_deliveries_sent_total.)
type queueCollector struct {
	src                                     Source
	log                                     *slog.Logger
	up, deliveries, webhooks, depth, oldest *prometheus.Desc
}

func newQueueCollector(src Source, log *slog.Logger) *queueCollector {
	return &queueCollector{
		src: src,
		log: log,
		up: prometheus.NewDesc("imbee_stats_up",
			"1 when the last scrape read the queue metrics from the database, 0 when a read failed (the server's log says why).", nil, nil),
		deliveries: prometheus.NewDesc("imbee_deliveries",
			"Link deliveries in the database not sent yet, by channel and state (queued, sending, failed, dead).", []string{"channel", "state"}, nil),
		webhooks: prometheus.NewDesc("imbee_webhook_events",
			"Bot webhook events in the database not delivered yet, by state (queued, sending, failed, dead).", []string{"state"}, nil),
		depth: prometheus.NewDesc("imbee_queue_depth",
			"Rows waiting to be sent (queued, sending or failed), by queue (deliveries, webhooks).", []string{"queue"}, nil),
		oldest: prometheus.NewDesc("imbee_queue_oldest_age_seconds",
			"Age of the oldest row waiting to be sent, by queue; 0 when none waits.", []string{"queue"}, nil),
	}
}

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.up, c.deliveries, c.webhooks, c.depth, c.oldest} {
		ch <- d
	}
}

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), statsTimeout)
	defer cancel()
	gauge := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), labels...)
	}
	up := int64(1)
	if q, err := c.src.Queues(ctx); err != nil {
		c.log.Warn("metrics: reading the queues", "err", err)
		up = 0
	} else {
		var depth, hooksDepth int64
		for _, chn := range channels {
			for _, st := range unsent {
				gauge(c.deliveries, q.Deliveries[imbee.QueueKey{Channel: chn, Status: st}], string(chn), string(st))
			}
			for _, st := range waiting {
				depth += q.Deliveries[imbee.QueueKey{Channel: chn, Status: st}]
			}
		}
		for _, st := range unsent {
			gauge(c.webhooks, q.Webhooks[st], string(st))
		}
		for _, st := range waiting {
			hooksDepth += q.Webhooks[st]
		}
		gauge(c.depth, depth, "deliveries")
		gauge(c.depth, hooksDepth, "webhooks")
		gauge(c.oldest, q.OldestDelivery, "deliveries")
		gauge(c.oldest, q.OldestWebhook, "webhooks")
	}
	gauge(c.up, up)
}
