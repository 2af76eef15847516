// Command jaegerremote is a real OpenTelemetry Go client of tracesearch's remote-sampling endpoint:
// go.opentelemetry.io/contrib/samplers/jaegerremote polls the strategy, and the program starts root
// spans at a steady rate, prints one JSON line per second (how many started, how many were sampled,
// the sampler's type and parameter), and exports the sampled ones over OTLP/HTTP when -otlp is set.
//
// tests/integration/test_sampling_go.py builds and runs it (devstack/go_tools.py).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"

	"go.opentelemetry.io/contrib/samplers/jaegerremote"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"
)

// second is what one line of the output says about one second of spans.
type second struct {
	Second  int     `json:"second"`
	Started int     `json:"started"`
	Sampled int     `json:"sampled"`
	Sampler string  `json:"sampler"` // of the last span sampled in the second ("" if none was)
	Param   float64 `json:"param"`
}

type options struct {
	samplingURL string
	otlpURL     string
	service     string
	operation   string
	rate        int
	seconds     int
	refresh     time.Duration
}

func parseFlags() options {
	var o options
	flag.StringVar(&o.samplingURL, "sampling-url", "http://127.0.0.1:4318/sampling", "the remote-sampling endpoint")
	flag.StringVar(&o.otlpURL, "otlp", "", "OTLP/HTTP traces URL to export sampled spans to (empty: none)")
	flag.StringVar(&o.service, "service", "go-sampled", "service.name, and the service the strategy is asked for")
	flag.StringVar(&o.operation, "operation", "GET /work", "name of the root spans")
	flag.IntVar(&o.rate, "rate", 100, "root spans started per second")
	flag.IntVar(&o.seconds, "seconds", 10, "how long to run")
	flag.DurationVar(&o.refresh, "refresh", time.Second, "how often the sampler polls the strategy")
	flag.Parse()
	return o
}

func main() {
	o := parseFlags()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "jaegerremote:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	ctx := context.Background()
	sampler := jaegerremote.New(
		o.service,
		jaegerremote.WithSamplingServerURL(o.samplingURL),
		jaegerremote.WithSamplingRefreshInterval(o.refresh),
		// Nothing is sampled before the first answer: every sampled span then reflects the served strategy.
		jaegerremote.WithInitialSampler(sdktrace.NeverSample()),
	)
	defer sampler.Close()
	// The sampler polls in the background from New on; this answer is taken before the first span.
	sampler.UpdateSampler()

	providerOptions := []sdktrace.TracerProviderOption{
		sdktrace.WithSampler(sampler),
		sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName(o.service))),
	}
	if o.otlpURL != "" {
		exporter, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(o.otlpURL))
		if err != nil {
			return err
		}
		providerOptions = append(providerOptions, sdktrace.WithBatcher(exporter, sdktrace.WithBatchTimeout(200*time.Millisecond)))
	}
	provider := sdktrace.NewTracerProvider(providerOptions...)
	tracer := provider.Tracer("tracesearch/tests/go/jaegerremote")

	out := json.NewEncoder(os.Stdout)
	tick := time.NewTicker(time.Second / time.Duration(o.rate))
	defer tick.Stop()
	for i := 0; i < o.seconds; i++ {
		line := second{Second: i}
		for n := 0; n < o.rate; n++ {
			<-tick.C
			_, span := tracer.Start(ctx, o.operation)
			span.SetAttributes(attribute.Int("test.second", i))
			line.Started++
			if span.SpanContext().IsSampled() {
				line.Sampled++
				describe(span, &line)
			}
			span.End()
		}
		if err := out.Encode(line); err != nil {
			return err
		}
	}
	// Flushes the batch exporter: every sampled span is sent before the program says it is done.
	if err := provider.Shutdown(ctx); err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "jaegerremote: done")
	return nil
}

// describe reads the sampler's type and parameter from what it recorded on a span it sampled
// (jaeger.sampler.type, jaeger.sampler.param), as a backend sees them.
func describe(span trace.Span, line *second) {
	recorded, ok := span.(sdktrace.ReadOnlySpan)
	if !ok {
		return
	}
	for _, kv := range recorded.Attributes() {
		switch kv.Key {
		case "jaeger.sampler.type":
			line.Sampler = kv.Value.AsString()
		case "jaeger.sampler.param":
			line.Param = kv.Value.AsFloat64()
		}
	}
}
