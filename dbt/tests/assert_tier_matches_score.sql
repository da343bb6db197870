-- The published tier is the one the score falls in.
select
    ds,
    user_key,
    score,
    tier

from {{ ref('sesame_scores') }}
where ds = {{ night() }}
    and tier is distinct from {{ score_tier('score') }}
