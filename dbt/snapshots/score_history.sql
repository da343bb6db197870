{% snapshot score_history %}

{#- dbt-spark snapshots need a table format with MERGE (Delta, Iceberg, Hudi);
    the spark target writes plain Parquet, so it has no score_history. -#}
{{
    config(
        enabled=target.type != 'spark',
        unique_key='user_key',
        strategy='check',
        check_cols=['score', 'tier', 'model_version'],
        updated_at='scored_at',
        hard_deletes='ignore'
    )
}}

-- Tonight's scores. A new version of a user's row is recorded when the
-- score, tier or model version changes; its validity starts on the night
-- (scored_at = ds plus the build's time of day), so rebuilding a night with
-- the same results records nothing new, and a night re-scored by another
-- model is recorded as a correction within that night.
select
    user_key,
    score,
    tier,
    model_version,
    ds,
    cast(ds as timestamp) + cast('{{ run_started_at.strftime("%H:%M:%S") }}' as interval) as scored_at

from {{ ref('sesame_scores') }}
where ds = {{ night() }}

{% endsnapshot %}
