{{ config(severity='warn') }}

-- A user is either scored or excluded on a night, never both.
select
    scores.ds,
    scores.user_key,
    exclusions.exclusion_code

from {{ ref('sesame_scores') }} as scores
inner join {{ ref('score_exclusions') }} as exclusions
    on scores.ds = exclusions.ds
    and scores.user_key = exclusions.user_key
where scores.ds = {{ night() }}
