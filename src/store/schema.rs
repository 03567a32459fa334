// @generated automatically by Diesel CLI.

diesel::table! {
    cerebrals (id) {
        id -> Text,
        tenant_id -> Text,
        name -> Text,
        system_prompt -> Nullable<Text>,
        provider -> Nullable<Text>,
        model -> Nullable<Text>,
        status -> Text,
        sops -> Text,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

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

diesel::table! {
    tenants (id) {
        id -> Text,
        name -> Text,
        plan -> Text,
        company -> Nullable<Text>,
        is_operator -> Bool,
        webhook_secret_sealed -> Nullable<Text>,
        status -> Text,
        config -> Text,
        provider_api_key_sealed -> Nullable<Text>,
        created_at -> BigInt,
        updated_at -> BigInt,
        runtime -> Text,
        pairing_code_sealed -> Nullable<Text>,
    }
}

diesel::table! {
    users (id) {
        id -> Text,
        email -> Text,
        name -> Nullable<Text>,
        password_hash -> Nullable<Text>,
        verified -> Bool,
        is_super_admin -> Bool,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    memberships (id) {
        id -> Text,
        tenant_id -> Text,
        user_id -> Text,
        role -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    api_keys (id) {
        id -> Text,
        tenant_id -> Text,
        kind -> Text,
        name -> Nullable<Text>,
        key_hash -> Text,
        preview -> Text,
        cerebral_id -> Nullable<Text>,
        identity_mode -> Text,
        allowed_origins -> Text,
        status -> Text,
        created_by -> Nullable<Text>,
        created_at -> BigInt,
        last_used_at -> Nullable<BigInt>,
        revoked_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    jwt_revocations (jti) {
        jti -> Text,
        user_id -> Text,
        expires_at -> BigInt,
        revoked_at -> BigInt,
    }
}

diesel::table! {
    one_time_codes (id) {
        id -> Text,
        email -> Text,
        purpose -> Text,
        code_hash -> Text,
        attempts -> Integer,
        expires_at -> BigInt,
        used_at -> Nullable<BigInt>,
        created_at -> BigInt,
    }
}

diesel::table! {
    audit_entries (id) {
        id -> Text,
        actor_id -> Nullable<Text>,
        action -> Text,
        tenant_id -> Nullable<Text>,
        detail -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    experts (id) {
        id -> Text,
        tenant_id -> Text,
        name -> Text,
        email -> Text,
        domains -> Text,
        credentials -> Text,
        tier -> Text,
        status -> Text,
        max_concurrent -> Integer,
        token_hash -> Text,
        quality_sum -> Double,
        quality_count -> BigInt,
        resolution_count -> BigInt,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    escalations (id) {
        id -> Text,
        tenant_id -> Text,
        domain -> Text,
        query -> Text,
        context -> Nullable<Text>,
        priority -> Text,
        status -> Text,
        output_schema -> Nullable<Text>,
        callback_url -> Nullable<Text>,
        metadata -> Nullable<Text>,
        task_type -> Nullable<Text>,
        candidates -> Text,
        sla_deadline -> BigInt,
        created_at -> BigInt,
        routed_at -> Nullable<BigInt>,
        accepted_at -> Nullable<BigInt>,
        resolved_at -> Nullable<BigInt>,
        closed_at -> Nullable<BigInt>,
        expert_id -> Nullable<Text>,
        excluded_experts -> Text,
        resolution -> Nullable<Text>,
        feedback_score -> Nullable<Double>,
        feedback_comment -> Nullable<Text>,
        feedback_at -> Nullable<BigInt>,
        feedback_version -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    idempotency_keys (tenant_id, idem_key) {
        tenant_id -> Text,
        idem_key -> Text,
        request_hash -> Text,
        escalation_id -> Text,
        response -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    webhook_deliveries (id) {
        id -> Text,
        tenant_id -> Text,
        escalation_id -> Nullable<Text>,
        subscription_id -> Nullable<Text>,
        event -> Text,
        url -> Text,
        payload -> Text,
        status -> Text,
        attempts -> Integer,
        last_status_code -> Nullable<Integer>,
        last_error -> Nullable<Text>,
        next_attempt_at -> Nullable<BigInt>,
        delivered_at -> Nullable<BigInt>,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    webhooks (id) {
        id -> Text,
        tenant_id -> Text,
        url -> Text,
        events -> Text,
        secret_sealed -> Text,
        secret_hint -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    customers (id) {
        id -> Text,
        tenant_id -> Text,
        external_id -> Nullable<Text>,
        email -> Nullable<Text>,
        phone -> Nullable<Text>,
        name -> Nullable<Text>,
        tags -> Text,
        metadata -> Text,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    session_escalations (escalation_id) {
        escalation_id -> Text,
        tenant_id -> Text,
        cerebral_id -> Text,
        session_id -> Text,
        execution_id -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    session_messages (id) {
        id -> Text,
        tenant_id -> Text,
        cerebral_id -> Text,
        session_id -> Text,
        role -> Text,
        content -> Text,
        customer_id -> Nullable<Text>,
        execution_id -> Nullable<Text>,
        escalation_id -> Nullable<Text>,
        created_at -> BigInt,
    }
}

diesel::table! {
    tenant_usage (tenant_id, hour_start) {
        tenant_id -> Text,
        hour_start -> BigInt,
        messages -> BigInt,
        tokens -> BigInt,
        tokens_input -> BigInt,
        tokens_output -> BigInt,
    }
}

diesel::table! {
    channels (id) {
        id -> Text,
        tenant_id -> Text,
        kind -> Text,
        config -> Text,
        secrets_sealed -> Nullable<Text>,
        enabled -> Bool,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    tenant_resources (tenant_id, recorded_at) {
        tenant_id -> Text,
        recorded_at -> BigInt,
        runtime -> Text,
        cpu_pct -> Nullable<Double>,
        mem_bytes -> Nullable<BigInt>,
        mem_limit -> Nullable<BigInt>,
        disk_bytes -> Nullable<BigInt>,
        net_in -> Nullable<BigInt>,
        net_out -> Nullable<BigInt>,
        pids -> Nullable<BigInt>,
    }
}

diesel::joinable!(api_keys -> tenants (tenant_id));
diesel::joinable!(cerebrals -> tenants (tenant_id));
diesel::joinable!(channels -> tenants (tenant_id));
diesel::joinable!(customers -> tenants (tenant_id));
diesel::joinable!(escalations -> tenants (tenant_id));
diesel::joinable!(experts -> tenants (tenant_id));
diesel::joinable!(idempotency_keys -> tenants (tenant_id));
diesel::joinable!(memberships -> tenants (tenant_id));
diesel::joinable!(memberships -> users (user_id));
diesel::joinable!(session_messages -> cerebrals (cerebral_id));
diesel::joinable!(tenant_resources -> tenants (tenant_id));
diesel::joinable!(tenant_usage -> tenants (tenant_id));
diesel::joinable!(webhook_deliveries -> tenants (tenant_id));
diesel::joinable!(webhooks -> tenants (tenant_id));

diesel::allow_tables_to_appear_in_same_query!(
    api_keys,
    audit_entries,
    cerebrals,
    channels,
    customers,
    escalations,
    events,
    experts,
    idempotency_keys,
    jwt_revocations,
    memberships,
    one_time_codes,
    session_escalations,
    session_messages,
    store_probes,
    tenant_resources,
    tenant_usage,
    tenants,
    users,
    webhook_deliveries,
    webhooks,
);
