{% snapshot score_history %}

{{
    config(
        unique_key='user_key',
        strategy='check',
        check_cols=['score', 'tier', 'model_version'],
        updated_at='scored_at',
        hard_deletes='ignore'
    )
}}

-- Tonight's scores. A new version of a user's row is recorded when the
-- score, tier or model version changes; its validity starts at the night
-- (scored_at = ds at midnight), not at the time of the build, so rebuilding
-- a night records nothing new.
select
    user_key,
    score,
    tier,
    model_version,
    ds,
    cast(ds as timestamp) as scored_at

from {{ ref('sesame_scores') }}
where ds = {{ night() }}

{% endsnapshot %}
