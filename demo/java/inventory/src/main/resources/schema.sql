-- Run by H2 itself as each connection opens (INIT in Stock.URL), so no JDBC span is made for it.
CREATE TABLE IF NOT EXISTS stock (sku VARCHAR(32) PRIMARY KEY, qty INT NOT NULL);
CREATE TABLE IF NOT EXISTS picking (order_id VARCHAR(64), items VARCHAR(512));
-- The demo's catalogue is sku-1 .. sku-12; plenty of each so reservations never run out.
INSERT INTO stock SELECT 'sku-' || X, 1000000 FROM SYSTEM_RANGE(1, 12) WHERE NOT EXISTS (SELECT 1 FROM stock);
