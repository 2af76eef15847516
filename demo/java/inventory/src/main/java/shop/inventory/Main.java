package shop.inventory;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Executors;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The inventory service of the demo: POST /reserve and GET /healthz on the JDK's own HTTP server, stock in
 * an in-memory H2 database, recommendations fetched over HTTP, orders read from Kafka (OrderConsumer).
 *
 * <p>There is no tracing code here on purpose: the OpenTelemetry Java agent instruments the JDK HTTP
 * server and client, JDBC, kafka-clients and logback (trace ids in the MDC) by itself.
 */
public final class Main {
    private static final Logger log = LoggerFactory.getLogger(Main.class);
    static final ObjectMapper JSON = new ObjectMapper();

    private final Stock stock;
    private final String recommendationsUrl;
    // HTTP/1.1: the default (HTTP/2) would try an h2c upgrade the demo's Node service need not speak.
    private final HttpClient client =
            HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).connectTimeout(Duration.ofSeconds(2)).build();

    Main(Stock stock, String recommendationsUrl) {
        this.stock = stock;
        this.recommendationsUrl = recommendationsUrl;
    }

    public static void main(String[] args) throws IOException {
        int port = Integer.parseInt(env("PORT", "8083"));
        Stock stock = new Stock();
        Main app = new Main(stock, env("RECOMMENDATIONS_URL", "http://127.0.0.1:8084"));

        HttpServer server = HttpServer.create(new InetSocketAddress("127.0.0.1", port), 64);
        server.createContext("/healthz", exchange -> send(exchange, 200, Map.of("status", "ok")));
        server.createContext("/reserve", app::reserve);
        server.setExecutor(Executors.newFixedThreadPool(8));
        server.start();

        // Kafka is started after the HTTP server so /healthz answers even while the broker is slow.
        OrderConsumer.start(env("KAFKA_BOOTSTRAP", "127.0.0.1:9092"), env("KAFKA_TOPIC", "shop.orders"),
                env("KAFKA_GROUP", "inventory"), stock);
        log.info("inventory listening on 127.0.0.1:{}", port);
    }

    private void reserve(HttpExchange exchange) throws IOException {
        try (exchange) {
            if (!"POST".equals(exchange.getRequestMethod())) {
                send(exchange, 405, Map.of("error", "POST only"));
                return;
            }
            JsonNode order;
            try (InputStream body = exchange.getRequestBody()) {
                order = JSON.readTree(body);
            }
            String orderId = order.path("order_id").asText("");
            List<String> items = new ArrayList<>();
            order.path("items").forEach(item -> items.add(item.asText()));
            if (items.isEmpty()) {
                send(exchange, 400, Map.of("error", "no items"));
                return;
            }

            List<String> unknown = stock.unknown(items);
            if (!unknown.isEmpty()) {
                log.warn("order {}: unknown skus {}", orderId, unknown);
                send(exchange, 409, Map.of("error", "unknown sku", "skus", unknown));
                return;
            }
            stock.reserve(items);
            log.info("order {}: reserved {}", orderId, items);
            send(exchange, 200, Map.of("reserved", items, "recommendations", recommendations(items)));
        } catch (Exception e) {
            log.error("reserve failed", e);
            send(exchange, 500, Map.of("error", String.valueOf(e.getMessage())));
        }
    }

    /** The recommendations service's list, or an empty one when it fails (a reservation does not need it). */
    private JsonNode recommendations(List<String> skus) {
        String url = recommendationsUrl + "/recommendations?skus="
                + URLEncoder.encode(String.join(",", skus), StandardCharsets.UTF_8);
        try {
            HttpRequest request = HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(5)).GET().build();
            HttpResponse<String> response = client.send(request, HttpResponse.BodyHandlers.ofString());
            if (response.statusCode() != 200) {
                log.warn("recommendations answered {}", response.statusCode());
                return JSON.createArrayNode();
            }
            return JSON.readTree(response.body()).path("recommendations");
        } catch (IOException e) {
            log.warn("recommendations unreachable: {}", e.toString());
            return JSON.createArrayNode();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return JSON.createArrayNode();
        }
    }

    private static void send(HttpExchange exchange, int status, Object body) throws IOException {
        byte[] bytes = JSON.writeValueAsBytes(body);
        exchange.getResponseHeaders().set("Content-Type", "application/json");
        exchange.sendResponseHeaders(status, bytes.length);
        exchange.getResponseBody().write(bytes);
        exchange.close();
    }

    static String env(String name, String fallback) {
        String value = System.getenv(name);
        return value == null || value.isBlank() ? fallback : value;
    }
}
