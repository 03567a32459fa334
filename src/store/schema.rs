// @generated automatically by Diesel CLI.

diesel::table! {
    events (id) {
        id -> Text,
        stream -> Text,
        kind -> Text,
        payload -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    store_probes (id) {
        id -> Text,
        run_id -> Text,
        sender -> BigInt,
        seq -> BigInt,
        created_at -> BigInt,
    }
}

diesel::allow_tables_to_appear_in_same_query!(events, store_probes,);
