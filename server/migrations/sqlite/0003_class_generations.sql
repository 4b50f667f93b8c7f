-- Moves forward on every change of a class's codes (rotation, and back to the
-- configuration): it is part of every token's code fingerprint, so old tokens never
-- verify again, even when the codes themselves come back.
CREATE TABLE class_generations (
    class_id   TEXT PRIMARY KEY NOT NULL,
    generation INTEGER NOT NULL
);
