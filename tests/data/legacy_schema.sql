-- The tables of the original single-file bot, before query logs had a platform,
-- answer logs an outcome or ratings a one-per-answer rule. A few rows each,
-- including an entry deleted long ago and a repeated rating press.
CREATE TABLE faqs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    question TEXT NOT NULL,
    answer TEXT NOT NULL,
    category TEXT,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE query_logs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id INTEGER,
    query_text TEXT NOT NULL,
    timestamp TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE answer_logs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    query_log_id INTEGER REFERENCES query_logs (id),
    faq_id INTEGER,
    similarity_score REAL,
    timestamp TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE rating_logs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    answer_log_id INTEGER REFERENCES answer_logs (id),
    user_id INTEGER,
    rating INTEGER,
    timestamp TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);

CREATE INDEX idx_query_logs_user ON query_logs (user_id);

INSERT INTO faqs (id, question, answer, category, created_at, updated_at) VALUES
    (1, 'Как оформить отпуск?', 'Заявление в разделе «Кадры».', 'Отпуск',
        '2024-03-01 09:00:00', '2024-03-02 10:30:00'),
    (2, 'Как перенести отпуск?', 'Согласуйте новые даты с руководителем.', 'Отпуск',
        '2024-03-01 09:05:00', '2024-03-01 09:05:00'),
    (3, 'Не работает VPN', 'Переустановите клиент и войдите заново.', 'IT',
        '2024-03-01 09:10:00', '2024-03-01 09:10:00'),
    (4, 'Старый вопрос', 'Удалён.', 'IT',
        '2024-03-01 09:15:00', '2024-03-01 09:15:00'),
    (5, 'Как сбросить пароль?', 'Через портал самообслуживания.', ' IT ',
        '2024-03-01 09:20:00', '2024-03-01 09:20:00'),
    (6, 'Где столовая?', 'На втором этаже.', NULL,
        '2024-03-01 09:25:00', '2024-03-01 09:25:00');
DELETE FROM faqs WHERE id = 4;

INSERT INTO query_logs (id, user_id, query_text, timestamp) VALUES
    (1, 405, 'как оформить отпуск', '2024-03-05 08:00:00'),
    (2, 512, 'не работает vpn', '2024-03-05 08:10:00'),
    (3, 512, 'погода в москве', '2024-03-05 08:20:00'),
    (4, 733, 'старый вопрос', '2024-03-05 08:30:00');

INSERT INTO answer_logs (id, query_log_id, faq_id, similarity_score, timestamp) VALUES
    (1, 1, 1, 0.875, '2024-03-05 08:00:01'),
    (2, 2, 3, 0.91, '2024-03-05 08:10:01'),
    (3, 3, NULL, 0.2, '2024-03-05 08:20:01'),
    (4, 4, 4, 0.95, '2024-03-05 08:30:01');

INSERT INTO rating_logs (id, answer_log_id, user_id, rating, timestamp) VALUES
    (1, 1, 405, 1, '2024-03-05 08:01:00'),
    (2, 2, 512, 0, '2024-03-05 08:11:00'),
    (3, 2, 512, 0, '2024-03-05 08:11:02');
