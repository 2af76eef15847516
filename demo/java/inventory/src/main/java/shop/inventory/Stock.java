package shop.inventory;

import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/** Stock and picking queue in an in-memory H2 database, through plain JDBC (the agent traces each statement). */
final class Stock {
    // DB_CLOSE_DELAY=-1 keeps the in-memory database alive between connections; the schema is made by
    // H2 itself (INIT), not through JDBC, so starting up makes no trace of its own.
    private static final String URL =
            "jdbc:h2:mem:inventory;DB_CLOSE_DELAY=-1;INIT=RUNSCRIPT FROM 'classpath:schema.sql'";

    /** The skus of {@code items} the stock table does not know. */
    List<String> unknown(List<String> items) throws SQLException {
        Set<String> known = new HashSet<>();
        try (Connection db = connect();
                PreparedStatement query = db.prepareStatement(
                        "SELECT sku, qty FROM stock WHERE sku IN (" + placeholders(items.size()) + ")")) {
            bind(query, items);
            try (ResultSet rows = query.executeQuery()) {
                while (rows.next()) {
                    known.add(rows.getString("sku"));
                }
            }
        }
        List<String> unknown = new ArrayList<>(items);
        unknown.removeAll(known);
        return unknown;
    }

    void reserve(List<String> items) throws SQLException {
        try (Connection db = connect();
                PreparedStatement update = db.prepareStatement(
                        "UPDATE stock SET qty = qty - 1 WHERE sku IN (" + placeholders(items.size()) + ")")) {
            bind(update, items);
            update.executeUpdate();
        }
    }

    void queueForPicking(String orderId, String items) throws SQLException {
        try (Connection db = connect();
                PreparedStatement insert = db.prepareStatement("INSERT INTO picking (order_id, items) VALUES (?, ?)")) {
            insert.setString(1, orderId);
            insert.setString(2, items);
            insert.executeUpdate();
        }
    }

    private static Connection connect() throws SQLException {
        return DriverManager.getConnection(URL, "sa", "");
    }

    private static String placeholders(int count) {
        return String.join(", ", Collections.nCopies(count, "?"));
    }

    private static void bind(PreparedStatement statement, List<String> values) throws SQLException {
        for (int i = 0; i < values.size(); i++) {
            statement.setString(i + 1, values.get(i));
        }
    }
}
