//! Class code generations: a counter per class that only moves forward (see
//! [`crate::classes::code_fingerprint`]).

use std::collections::HashMap;

use super::{Store, with_pool};

#[derive(Debug, sqlx::FromRow)]
struct Generation {
    class_id: String,
    generation: i64,
}

impl Store {
    /// Every class's code generation (classes never changed have none: 0).
    pub async fn class_generations(&self) -> sqlx::Result<HashMap<String, i64>> {
        let rows: Vec<Generation> = with_pool!(&self.db, pool => {
            sqlx::query_as("SELECT class_id, generation FROM class_generations")
                .fetch_all(pool)
                .await
        })?;
        Ok(rows
            .into_iter()
            .map(|g| (g.class_id, g.generation))
            .collect())
    }

    /// Moves a class's generation forward; returns the new one. Called before its codes
    /// change, so a failure changes nothing and a crash in between only ends tokens early.
    pub async fn bump_generation(&self, class_id: &str) -> sqlx::Result<i64> {
        with_pool!(&self.db, pool => {
            sqlx::query_scalar(
                "INSERT INTO class_generations (class_id, generation) VALUES ($1, 1)
                 ON CONFLICT (class_id) DO UPDATE SET generation = class_generations.generation + 1
                 RETURNING generation",
            )
            .bind(class_id)
            .fetch_one(pool)
            .await
        })
    }
}
