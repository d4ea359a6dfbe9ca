package cli

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/imbee/imbee"
	"github.com/imbee/imbee/internal/delivery"
)

// transportFlags configure how links reach people: mail, SMS, the
// templates, the delivery worker and the per-recipient limit.
type transportFlags struct {
	smtp           delivery.SMTPConfig
	sms            delivery.SMSConfig
	templates      string
	worker         delivery.Config
	recipientLimit int
	// The bots' webhooks: how long one POST may take, and whether they may
	// point at loopback and private addresses.
	webhookTimeout       time.Duration
	allowPrivateWebhooks bool
}

func addTransportFlags(fs *flag.FlagSet) *transportFlags {
	tf := &transportFlags{}
	fs.StringVar(&tf.smtp.Addr, "smtp-addr", "", "mail server, host:port; unset: mails are logged, not sent")
	fs.StringVar(&tf.smtp.User, "smtp-user", "", "SMTP AUTH user (none when unset)")
	fs.StringVar(&tf.smtp.Password, "smtp-password", "", "SMTP AUTH password (prefer IMBEE_SMTP_PASSWORD: flags show in the process list)")
	fs.StringVar(&tf.smtp.TLS, "smtp-tls", "starttls", "SMTP encryption: starttls (required), tls (implicit, usually port 465) or none")
	fs.StringVar(&tf.smtp.From, "mail-from", "", "sender address of the mails, e.g. links@example.com (the name is the corporate's)")
	fs.StringVar(&tf.sms.Provider, "sms-provider", "", "SMS provider: twilio (the Twilio Messages API or a compatible one) or webhook (a signed JSON POST); unset: SMS are logged, not sent")
	fs.StringVar(&tf.sms.URL, "sms-url", "", "twilio: API base URL (default "+delivery.DefaultTwilioURL+"); webhook: the endpoint")
	fs.StringVar(&tf.sms.Account, "sms-account", "", "twilio: account SID")
	fs.StringVar(&tf.sms.Token, "sms-token", "", "twilio: auth token; webhook: signing secret (prefer IMBEE_SMS_TOKEN)")
	fs.StringVar(&tf.sms.From, "sms-from", "", "sender number (E.164) or name of the SMS")
	fs.StringVar(&tf.templates, "templates", "", "directory of mail and SMS templates that replace the built-in ones: DIR/{en,es}/{subject.txt,mail.txt,mail.html,sms.txt}")
	fs.IntVar(&tf.worker.Workers, "delivery-workers", delivery.DefaultWorkers, "sends in flight at once")
	fs.DurationVar(&tf.worker.FirstRetry, "delivery-first-retry", delivery.DefaultFirstRetry, "wait after a failed send; doubles with each failure")
	fs.DurationVar(&tf.worker.MaxRetry, "delivery-max-retry", delivery.DefaultMaxRetry, "longest wait between two tries of a send")
	fs.IntVar(&tf.worker.MaxAttempts, "delivery-attempts", delivery.DefaultMaxAttempts, "tries before a delivery is dead")
	fs.DurationVar(&tf.worker.Timeout, "delivery-timeout", delivery.DefaultTimeout, "longest one send may take; a send claimed by a server that died is tried again after twice this")
	fs.DurationVar(&tf.webhookTimeout, "webhook-timeout", delivery.DefaultWebhookTimeout, "longest one POST to a bot's webhook may take")
	fs.BoolVar(&tf.allowPrivateWebhooks, "allow-private-webhooks", false, "let bots' webhooks point at loopback and private addresses (labs and tests; never on a server tenants share)")
	fs.IntVar(&tf.recipientLimit, "recipient-limit", 10, "links one corporate may send to one address or number per hour; 0 turns the limit off")
	return tf
}

// describer says where a transport sends, without secrets.
type describer interface{ Describe() string }

// senders builds one sender per channel and says on out where each sends:
// a channel without a provider gets the logging transport.
func (tf *transportFlags) senders(out io.Writer, log *slog.Logger) (map[imbee.Channel]delivery.Sender, error) {
	t, err := delivery.LoadTemplates(tf.templates)
	if err != nil {
		return nil, fmt.Errorf("--templates: %w", err)
	}
	logSender := &delivery.LogSender{Log: log}
	senders := map[imbee.Channel]delivery.Sender{imbee.ChannelMail: logSender, imbee.ChannelSMS: logSender}
	if tf.smtp.Addr != "" {
		if senders[imbee.ChannelMail], err = delivery.NewSMTPSender(tf.smtp, t); err != nil {
			return nil, err
		}
	}
	if tf.sms.Provider != "" {
		if senders[imbee.ChannelSMS], err = delivery.NewSMSSender(tf.sms, t, nil); err != nil {
			return nil, err
		}
	}
	for _, ch := range []imbee.Channel{imbee.ChannelMail, imbee.ChannelSMS} {
		where := "not configured: deliveries are recorded and logged, not sent"
		if d, ok := senders[ch].(describer); ok {
			where = d.Describe()
		}
		fmt.Fprintf(out, "imbee %s: %s\n", ch, where)
		log.Info("delivery transport", "channel", ch, "transport", where)
	}
	return senders, nil
}

// webhookConfig is the worker's policy for the bots' webhooks: the
// deliveries' one, with its own timeout.
func (tf *transportFlags) webhookConfig() delivery.Config {
	cfg := tf.worker
	cfg.Timeout = tf.webhookTimeout
	return cfg
}
