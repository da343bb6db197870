{#-
    The characteristics dbt owns (feature_registry.engine = 'dbt'), one row per
    user in the night's profile per night, written into the lake beside
    Spark's (lake/features/dbt_user_features/ds=YYYY-MM-DD/) for the scoring
    job, the training set and the feature store to read with Spark's
    lake/features/user_features. On DuckDB the model is an external Parquet
    table; one folder per night, the nights of this run replaced (the caller
    empties them first: see sesame.night.dbt_features).
-#}
{{ config(
    materialized='external' if target.type == 'duckdb' else 'table',
    location=env_var('SESAME_HOME') ~ '/lake/features/dbt_user_features',
    options={'partition_by': 'ds', 'overwrite_or_ignore': true} if target.type == 'duckdb' else none,
    partition_by='ds' if target.type == 'spark' else none,
) }}

with

identity_traits as (

    select * from {{ ref('feat_identity_traits') }}

),

court_list as (

    select * from {{ ref('feat_court_list') }}

),

order_mix as (

    select * from {{ ref('feat_order_mix') }}

)

select
    identity_traits.user_id,

    court_list.ch_court_listed,
    order_mix.bp_cancel_rate_90,
    order_mix.bp_return_rate_90,
    order_mix.bp_local_services_share_90,
    order_mix.bp_essential_share_90,
    identity_traits.it_identity_verified,
    identity_traits.it_account_age_days,
    identity_traits.it_phone_tenure_months,
    identity_traits.it_address_months,

    -- the feature store's event time: a night's features are as known at its start
    {{ night_start_utc('identity_traits.night') }} as feature_timestamp,
    cast(identity_traits.night as {{ string_type() }}) as ds

from identity_traits
left join court_list
    on identity_traits.night = court_list.night
    and identity_traits.user_id = court_list.user_id
left join order_mix
    on identity_traits.night = order_mix.night
    and identity_traits.user_id = order_mix.user_id
