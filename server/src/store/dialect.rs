//! The only SQL that differs between the backends, one constant or function per backend
//! for each statement. Everything else in `store` is written once (see [`super::with_pool!`]).

/// SQLite's versions.
pub(super) mod sqlite {
    /// Every column of classchat's tables, in declaration order: `table_name`,
    /// `column_name`, `column_type`, `not_null` (0/1; a primary key counts as not null).
    pub(in crate::store) const TABLE_COLUMNS: &str =
        "SELECT m.name AS table_name, p.name AS column_name,
            LOWER(p.type) AS column_type,
            CAST(CASE WHEN p.\"notnull\" = 1 OR p.pk > 0 THEN 1 ELSE 0 END AS BIGINT) AS not_null
     FROM sqlite_master m, pragma_table_info(m.name) p
     WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name <> '_sqlx_migrations'
     ORDER BY m.name, p.cid";
}

/// PostgreSQL's versions.
pub(super) mod postgres {
    /// As [`super::sqlite::TABLE_COLUMNS`], from the information schema of the
    /// connection's schema.
    pub(in crate::store) const TABLE_COLUMNS: &str =
        "SELECT CAST(table_name AS TEXT) AS table_name, CAST(column_name AS TEXT) AS column_name,
            CAST(data_type AS TEXT) AS column_type,
            CAST(CASE WHEN is_nullable = 'NO' THEN 1 ELSE 0 END AS BIGINT) AS not_null
     FROM information_schema.columns
     WHERE table_schema = current_schema() AND table_name <> '_sqlx_migrations'
     ORDER BY table_name, ordinal_position";

    /// After rows were copied in with their ids: moves `table`'s id sequence past the
    /// largest id, so the next insert does not collide (SQLite needs nothing: a rowid
    /// follows the largest one). `table` is one of the copier's constants, never input.
    pub(in crate::store) fn move_id_sequence(table: &str) -> String {
        format!(
            "SELECT setval(pg_get_serial_sequence('{table}', 'id'), MAX(id)) FROM {table} HAVING MAX(id) IS NOT NULL"
        )
    }
}
