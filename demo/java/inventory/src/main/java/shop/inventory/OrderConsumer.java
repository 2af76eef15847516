package shop.inventory;

import com.fasterxml.jackson.databind.JsonNode;
import java.time.Duration;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.errors.WakeupException;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Reads the orders checkout publishes and queues each for picking. The agent turns every record into a
 * process span whose parent is the producer's span (from the record's W3C headers).
 */
final class OrderConsumer implements Runnable {
    private static final Logger log = LoggerFactory.getLogger(OrderConsumer.class);
    // Short, so a record is handled within a fraction of a second of its arrival.
    private static final Duration POLL = Duration.ofMillis(200);

    private final Properties config = new Properties();
    private final KafkaConsumer<String, String> consumer;
    private final String bootstrap;
    private final String topic;
    private final Stock stock;

    private OrderConsumer(String bootstrap, String topic, String group, Stock stock) {
        this.bootstrap = bootstrap;
        this.topic = topic;
        this.stock = stock;
        config.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        config.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        // A new group reads the topic from its start, so no order published before it joined is lost.
        config.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        // A member that died without leaving (SIGKILL) holds its partitions this long; the default, 45 s,
        // would stall a restarted demo's orders that long.
        config.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, "10000");
        config.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        config.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        consumer = new KafkaConsumer<>(config);
    }

    static void start(String bootstrap, String topic, String group, Stock stock) {
        OrderConsumer orders = new OrderConsumer(bootstrap, topic, group, stock);
        Thread thread = new Thread(orders, "order-consumer");
        thread.setDaemon(true);
        thread.start();
        // On SIGTERM the consumer leaves its group, so a restarted inventory gets the partitions at once
        // instead of after the dead member's session timeout.
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            orders.consumer.wakeup();
            try {
                thread.join(3000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }));
    }

    @Override
    public void run() {
        createTopic();
        try (consumer) {
            consumer.subscribe(List.of(topic));
            log.info("consuming {} from {}", topic, bootstrap);
            while (true) {
                ConsumerRecords<String, String> records = consumer.poll(POLL);
                // Iterating the records is where the agent opens each record's process span.
                for (ConsumerRecord<String, String> record : records) {
                    handle(record);
                }
            }
        } catch (WakeupException e) {
            log.info("order consumer stopped");
        } catch (Exception e) {
            log.error("order consumer failed", e);
        }
    }

    private void handle(ConsumerRecord<String, String> record) {
        try {
            JsonNode order = Main.JSON.readTree(record.value());
            String orderId = order.path("order_id").asText("");
            log.info("order {} queued for picking: {}", orderId, order.path("items"));
            stock.queueForPicking(orderId, order.path("items").toString());
        } catch (Exception e) {
            log.warn("order record at offset {} skipped: {}", record.offset(), e.toString());
        }
    }

    /** Subscribing to a topic that does not exist yet would wait for it; create it instead (once). */
    private void createTopic() {
        Properties adminConfig = new Properties();
        adminConfig.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        try (Admin admin = Admin.create(adminConfig)) {
            admin.createTopics(List.of(new NewTopic(topic, 1, (short) 1))).all().get();
            log.info("created topic {}", topic);
        } catch (ExecutionException e) {
            if (!(e.getCause() instanceof TopicExistsException)) {
                log.warn("could not create topic {}: {}", topic, e.getCause().toString());
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
