//! Copying a deployment's history from one database to another (`classchat migrate-db`),
//! table by table, page by page, in SQL both backends accept.
//!
//! A table is one entry in [`TABLES`]. Rows keep their keys (usage and audit rows keep their
//! ids) and go in with `ON CONFLICT DO NOTHING`, so a second run copies nothing twice.

use super::{Db, Store, dialect, with_pool};

/// How a column is read and written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Int,
    Text,
}

/// One table the copier knows: its columns and its primary key (also the copy's order).
#[derive(Debug)]
pub struct Table {
    pub name: &'static str,
    pub columns: &'static [(&'static str, Kind)],
    pub key: &'static [&'static str],
    /// Whether `id` comes from a sequence on PostgreSQL (moved past the copied ids).
    pub serial_id: bool,
}

use Kind::{Int, Text};

/// Every table holding history, in the order they are copied. A migration that adds a
/// table adds it here too: the copier refuses a source with a table or column it does not
/// know, rather than leave it behind.
pub const TABLES: &[Table] = &[
    Table {
        name: "sessions",
        columns: &[
            ("session_id", Text),
            ("class_id", Text),
            ("display_name", Text),
            ("started_at_ms", Int),
            ("last_seen_ms", Int),
        ],
        key: &["session_id"],
        serial_id: false,
    },
    Table {
        name: "usage_log",
        columns: &[
            ("id", Int),
            ("at_ms", Int),
            ("class_id", Text),
            ("session_id", Text),
            ("display_name", Text),
            ("conversation_id", Text),
            ("model", Text),
            ("prompt_tokens", Int),
            ("completion_tokens", Int),
            ("tokens_estimated", Int),
            ("first_token_ms", Int),
            ("total_ms", Int),
            ("outcome", Text),
            ("error_code", Text),
            ("activity_id", Text),
        ],
        key: &["id"],
        serial_id: true,
    },
    Table {
        name: "usage_hourly",
        columns: &[
            ("class_id", Text),
            ("hour_ms", Int),
            ("messages", Int),
            ("tokens", Int),
            ("errors", Int),
            ("estimated", Int),
        ],
        key: &["class_id", "hour_ms"],
        serial_id: false,
    },
    Table {
        name: "usage_by_session",
        columns: &[
            ("class_id", Text),
            ("session_id", Text),
            ("display_name", Text),
            ("messages", Int),
            ("tokens", Int),
            ("last_at_ms", Int),
            ("estimated", Int),
        ],
        key: &["class_id", "session_id"],
        serial_id: false,
    },
    Table {
        name: "revoked_sessions",
        columns: &[
            ("session_id", Text),
            ("class_id", Text),
            ("revoked_at", Int),
            ("expires_at", Int),
            ("reason", Text),
        ],
        key: &["session_id"],
        serial_id: false,
    },
    Table {
        name: "class_overrides",
        columns: &[
            ("class_id", Text),
            ("codes", Text),
            ("enabled", Int),
            ("daily_quota", Int),
            ("updated_by", Text),
            ("updated_ms", Int),
        ],
        key: &["class_id"],
        serial_id: false,
    },
    Table {
        name: "admin_audit",
        columns: &[
            ("id", Int),
            ("at_ms", Int),
            ("actor", Text),
            ("action", Text),
            ("class_id", Text),
            ("detail", Text),
            ("address", Text),
        ],
        key: &["id"],
        serial_id: true,
    },
    Table {
        name: "class_generations",
        columns: &[("class_id", Text), ("generation", Int)],
        key: &["class_id"],
        serial_id: false,
    },
    Table {
        name: "admin_revoked_sessions",
        columns: &[("nonce", Text), ("expires_ms", Int)],
        key: &["nonce"],
        serial_id: false,
    },
    Table {
        name: "teachers",
        columns: &[
            ("id", Text),
            ("email", Text),
            ("name", Text),
            ("password_hash", Text),
            ("disabled", Int),
            ("created_ms", Int),
        ],
        key: &["id"],
        serial_id: false,
    },
    Table {
        name: "invitations",
        columns: &[
            ("digest", Text),
            ("teacher_id", Text),
            ("created_ms", Int),
            ("expires_ms", Int),
            ("used_ms", Int),
        ],
        key: &["digest"],
        serial_id: false,
    },
    Table {
        name: "access_tokens",
        columns: &[
            ("id", Text),
            ("digest", Text),
            ("prefix", Text),
            ("name", Text),
            ("teacher_id", Text),
            ("created_ms", Int),
            ("last_used_ms", Int),
            ("revoked_ms", Int),
        ],
        key: &["id"],
        serial_id: false,
    },
    Table {
        name: "classes",
        columns: &[
            ("id", Text),
            ("title", Text),
            ("greeting", Text),
            ("system_prompt", Text),
            ("starters", Text),
            ("model", Text),
            ("time_zone", Text),
            ("messages_per_minute", Int),
            ("class_messages_per_minute", Int),
            ("daily_quota", Int),
            ("token_ttl_secs", Int),
            ("access_windows", Text),
            ("course_start", Text),
            ("course_end", Text),
            ("keep_conversations_days", Int),
            ("keep_usage_days", Int),
            ("keep_sessions_days", Int),
            ("created_ms", Int),
            ("updated_ms", Int),
            ("visibility", Text),
        ],
        key: &["id"],
        serial_id: false,
    },
    Table {
        name: "class_members",
        columns: &[
            ("class_id", Text),
            ("teacher_id", Text),
            ("role", Text),
            ("added_ms", Int),
        ],
        key: &["class_id", "teacher_id"],
        serial_id: false,
    },
    Table {
        name: "activities",
        columns: &[
            ("id", Text),
            ("class_id", Text),
            ("title", Text),
            ("greeting", Text),
            ("system_prompt", Text),
            ("starters", Text),
            ("model", Text),
            ("code_digest", Text),
            ("code_generation", Int),
            ("paused", Int),
            ("created_ms", Int),
            ("updated_ms", Int),
        ],
        key: &["id"],
        serial_id: false,
    },
    Table {
        name: "conversation_exchanges",
        columns: &[
            ("id", Text),
            ("class_id", Text),
            ("activity_id", Text),
            ("session_id", Text),
            ("display_name", Text),
            ("conversation_id", Text),
            ("at_ms", Int),
            ("kept", Text),
            ("sealed", Text),
        ],
        key: &["id"],
        serial_id: false,
    },
    Table {
        name: "safety_flags",
        columns: &[
            ("id", Text),
            ("class_id", Text),
            ("session_id", Text),
            ("conversation_id", Text),
            ("category", Text),
            ("source", Text),
            ("detail", Text),
            ("exchange", Text),
            ("created_ms", Int),
            ("dismissed_ms", Int),
            ("dismissed_by", Text),
        ],
        key: &["id"],
        serial_id: false,
    },
    Table {
        name: "conversation_reads",
        columns: &[
            ("id", Int),
            ("at_ms", Int),
            ("reader", Text),
            ("class_id", Text),
            ("session_id", Text),
            ("display_name", Text),
            ("conversation_id", Text),
            ("address", Text),
        ],
        key: &["id"],
        serial_id: true,
    },
    Table {
        name: "safety_contacts",
        columns: &[("class_id", Text), ("teacher_id", Text), ("added_ms", Int)],
        key: &["class_id", "teacher_id"],
        serial_id: false,
    },
    Table {
        name: "safety_help",
        columns: &[("class_id", Text), ("help", Text), ("updated_ms", Int)],
        key: &["class_id"],
        serial_id: false,
    },
    // Pending notifications too: the new database sends what the old one had not.
    Table {
        name: "alert_outbox",
        columns: &[
            ("id", Text),
            ("flag_id", Text),
            ("channel", Text),
            ("recipient", Text),
            ("attempts", Int),
            ("next_at_ms", Int),
            ("claimed_until_ms", Int),
            ("sent_ms", Int),
            ("last_error", Text),
            ("created_ms", Int),
        ],
        key: &["id"],
        serial_id: false,
    },
    Table {
        name: "lti_platforms",
        columns: &[
            ("id", Text),
            ("issuer", Text),
            ("client_id", Text),
            ("auth_url", Text),
            ("jwks_url", Text),
            ("token_url", Text),
            ("created_ms", Int),
        ],
        key: &["id"],
        serial_id: false,
    },
    Table {
        name: "lti_deployments",
        columns: &[("platform_id", Text), ("deployment_id", Text)],
        key: &["platform_id", "deployment_id"],
        serial_id: false,
    },
    Table {
        name: "lti_bindings",
        columns: &[
            ("platform_id", Text),
            ("deployment_id", Text),
            ("context_id", Text),
            ("class_id", Text),
            ("created_ms", Int),
        ],
        key: &["platform_id", "deployment_id", "context_id"],
        serial_id: false,
    },
    Table {
        name: "lti_users",
        columns: &[
            ("user_digest", Text),
            ("platform_id", Text),
            ("first_ms", Int),
            ("last_ms", Int),
        ],
        key: &["user_digest"],
        serial_id: false,
    },
    Table {
        name: "lti_instructors",
        columns: &[
            ("class_id", Text),
            ("user_digest", Text),
            ("teacher_id", Text),
            ("last_ms", Int),
        ],
        key: &["class_id", "user_digest"],
        serial_id: false,
    },
    Table {
        name: "lti_teachers",
        columns: &[
            ("user_digest", Text),
            ("teacher_id", Text),
            ("created_ms", Int),
        ],
        key: &["user_digest"],
        serial_id: false,
    },
    // Sealed under a key derived from AUTH_SECRET: the new server needs the same secret.
    Table {
        name: "lti_tool_keys",
        columns: &[
            ("kid", Text),
            ("sealed", Text),
            ("public_jwk", Text),
            ("current", Int),
            ("created_ms", Int),
        ],
        key: &["kid"],
        serial_id: false,
    },
    Table {
        name: "personal_codes",
        columns: &[
            ("id", Text),
            ("class_id", Text),
            ("name", Text),
            ("code_digest", Text),
            ("created_ms", Int),
            ("issued_ms", Int),
            ("revoked_ms", Int),
        ],
        key: &["id"],
        serial_id: false,
    },
    Table {
        name: "personal_code_sessions",
        columns: &[
            ("session_id", Text),
            ("code_id", Text),
            ("class_id", Text),
            ("ends_at", Int),
        ],
        key: &["session_id"],
        serial_id: false,
    },
    Table {
        name: "student_allowances",
        columns: &[
            ("class_id", Text),
            ("per_day", Int),
            ("per_week", Int),
            ("updated_by", Text),
            ("updated_ms", Int),
        ],
        key: &["class_id"],
        serial_id: false,
    },
];

/// Tables of passing state, not history, that are deliberately not copied: the new
/// database starts them empty.
pub const NOT_COPIED: &[&str] = &[
    // Rate budgets and today's quota counts: the limits start whole again.
    "rate_budgets",
    "daily_messages",
    // Slices of those budgets that replicas hold for a few seconds.
    "budget_leases",
    // Recent wrong dashboard passwords: the limits start whole again.
    "admin_login_failures",
    // When each dashboard account last signed in ("since your last visit").
    "admin_sign_ins",
    // Codes and links waiting a few minutes to be shown once on the dashboard.
    "one_time_secrets",
    // LTI logins waiting for their launch (ten minutes at most).
    "lti_states",
    // Dynamic Registration URLs and dashboard hand-offs (an hour at most).
    "lti_tickets",
    // Known students' messages this day and week: their allowances start whole again.
    "student_usage",
];

/// One value of a copied row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Int(Option<i64>),
    Text(Option<String>),
}

/// A copied row: its values in [`Table::columns`]' order.
pub type Row = Vec<Value>;

/// One column of a table as the database describes it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ColumnInfo {
    pub table_name: String,
    pub column_name: String,
    /// As the backend names it (`integer`, `bigint`, `text`…).
    pub column_type: String,
    /// 0/1.
    pub not_null: i64,
}

/// Rows per multi-row INSERT (13 columns × 64 stays below SQLite's oldest parameter limit).
const ROWS_PER_STATEMENT: usize = 64;

impl Table {
    fn column_list(&self) -> String {
        self.columns
            .iter()
            .map(|(c, _)| *c)
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn key_indices(&self) -> Vec<usize> {
        self.key
            .iter()
            .map(|k| {
                self.columns
                    .iter()
                    .position(|(c, _)| c == k)
                    .expect("a key is one of the table's columns")
            })
            .collect()
    }
}

macro_rules! bind_value {
    ($q:expr, $v:expr) => {
        match $v {
            Value::Int(i) => $q.push_bind(*i),
            Value::Text(t) => $q.push_bind(t.clone()),
        }
    };
}

impl Store {
    /// Every column of every table (not sqlx's bookkeeping), table by table.
    pub async fn table_columns(&self) -> sqlx::Result<Vec<ColumnInfo>> {
        match &self.db {
            Db::Sqlite(pool) => {
                sqlx::query_as(dialect::sqlite::TABLE_COLUMNS)
                    .fetch_all(pool)
                    .await
            }
            Db::Postgres(pool) => {
                sqlx::query_as(dialect::postgres::TABLE_COLUMNS)
                    .fetch_all(pool)
                    .await
            }
        }
    }

    /// How many rows `table` holds.
    pub async fn count_rows(&self, table: &Table) -> sqlx::Result<i64> {
        // `table.name` is one of the constants above, never input.
        let sql = format!("SELECT COUNT(*) FROM {}", table.name);
        with_pool!(&self.db, pool => sqlx::query_scalar(&sql).fetch_one(pool).await)
    }

    /// Up to `limit` rows of `table` after the row whose key `after` holds (from the
    /// start when `None`), in key order.
    pub async fn read_page(
        &self,
        table: &Table,
        after: Option<&Row>,
        limit: i64,
    ) -> sqlx::Result<Vec<Row>> {
        let keys = table.key.join(", ");
        with_pool!(&self.db, pool => {
            let mut q = sqlx::QueryBuilder::new(format!(
                "SELECT {} FROM {} ",
                table.column_list(),
                table.name
            ));
            if let Some(after) = after {
                // Row-value comparison: `(a, b) > ($1, $2)`, the keyset's next page.
                q.push(format!("WHERE ({keys}) > ("));
                let mut sep = q.separated(", ");
                for i in table.key_indices() {
                    bind_value!(sep, &after[i]);
                }
                q.push(") ");
            }
            q.push(format!("ORDER BY {keys} LIMIT "));
            q.push_bind(limit);
            let rows = q.build().fetch_all(pool).await?;
            rows.iter()
                .map(|r| {
                    use sqlx::Row as _;
                    table
                        .columns
                        .iter()
                        .enumerate()
                        .map(|(i, (_, kind))| {
                            Ok(match kind {
                                Kind::Int => Value::Int(r.try_get(i)?),
                                Kind::Text => Value::Text(r.try_get(i)?),
                            })
                        })
                        .collect::<sqlx::Result<Row>>()
                })
                .collect::<sqlx::Result<Vec<Row>>>()
        })
    }

    /// Inserts `rows` into `table`, skipping any whose key is already there; returns how
    /// many went in.
    pub async fn write_rows(&self, table: &Table, rows: &[Row]) -> sqlx::Result<u64> {
        let head = format!("INSERT INTO {} ({}) ", table.name, table.column_list());
        with_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let mut inserted = 0;
            for chunk in rows.chunks(ROWS_PER_STATEMENT) {
                let mut q = sqlx::QueryBuilder::new(&head);
                q.push_values(chunk, |mut b, row| {
                    for v in row {
                        bind_value!(b, v);
                    }
                });
                q.push(" ON CONFLICT DO NOTHING");
                inserted += q.build().execute(&mut *tx).await?.rows_affected();
            }
            tx.commit().await?;
            Ok(inserted)
        })
    }

    /// Once `table` is copied: on PostgreSQL, its id sequence continues after the
    /// copied ids.
    pub async fn finish_copy(&self, table: &Table) -> sqlx::Result<()> {
        if let (Db::Postgres(pool), true) = (&self.db, table.serial_id) {
            sqlx::query(&dialect::postgres::move_id_sequence(table.name))
                .execute(pool)
                .await?;
        }
        Ok(())
    }
}
