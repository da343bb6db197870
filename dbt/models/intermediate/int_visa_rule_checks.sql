-- A table, not a view like the other intermediate models: three marts and the tests read it, and as a view each of
-- them computed it again (8 times a night; at 1,000,000 users 4.9 million rows, 5 to 10 s each).
{{ config(materialized='table') }}

-- Every user scored tonight against every visa rule in force tonight, with
-- the outcome of each condition. visa_eligibility keeps the rows that pass
-- them all; analysts use this one to see why a user is not on a list.
with

rules as (

    select * from {{ ref('int_visa_rules_in_force') }}

),

scores as (

    select
        ds,
        user_key,
        score

    from {{ ref('sesame_scores') }}
    where ds <= {{ night() }}

),

tonight as (

    select
        user_key,
        score

    from scores
    where ds = {{ night() }}

),

users as (

    select
        user_key,
        is_identity_verified

    from {{ ref('stg_users') }}

),

features as (

    select
        user_key,
        history_days

    from {{ ref('stg_user_features') }}

),

court_listed as (

    select user_key from {{ ref('int_court_listed_users') }}

),

-- Nights that have scores, most recent first: tonight is night 1.
recent_nights as (

    select
        ds,
        row_number() over (order by ds desc) as night_number

    from (select distinct ds from scores) as scored_nights

),

-- For each rule, on how many of its last min_qualifying_nights scored nights
-- the user held a score of at least min_score.
qualifying as (

    select
        rules.destination,
        scores.user_key,
        count(*) as qualifying_nights

    from rules
    inner join recent_nights
        on recent_nights.night_number <= rules.min_qualifying_nights
    inner join scores
        on scores.ds = recent_nights.ds
        and scores.score >= rules.min_score
    group by
        rules.destination,
        scores.user_key

),

checked as (

    select
        rules.ds,
        rules.destination,
        rules.rule_version,
        tonight.user_key,
        tonight.score,

        coalesce(users.is_identity_verified, false) as is_identity_verified,
        court_listed.user_key is not null as is_court_listed,
        features.history_days,
        cast(coalesce(qualifying.qualifying_nights, 0) as integer) as qualifying_nights,

        tonight.score >= rules.min_score as passes_min_score,
        (
            not rules.require_identity_verified
            or coalesce(users.is_identity_verified, false)
        ) as passes_identity,
        (
            not rules.exclude_court_listed
            or court_listed.user_key is null
        ) as passes_court_list,
        coalesce(features.history_days >= rules.min_history_days, false) as passes_history,
        coalesce(qualifying.qualifying_nights, 0) >= rules.min_qualifying_nights as passes_qualifying_nights

    from tonight
    cross join rules
    left join users
        on tonight.user_key = users.user_key
    left join features
        on tonight.user_key = features.user_key
    left join court_listed
        on tonight.user_key = court_listed.user_key
    left join qualifying
        on rules.destination = qualifying.destination
        and tonight.user_key = qualifying.user_key

),

final as (

    select
        *,
        (
            passes_min_score
            and passes_identity
            and passes_court_list
            and passes_history
            and passes_qualifying_nights
        ) as is_eligible

    from checked

)

select * from final
