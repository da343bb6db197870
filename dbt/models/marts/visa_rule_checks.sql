-- Tonight's visa decision for every scored user and destination, condition by condition: why a user is or is
-- not on a list. Rebuilt whole each night (the per-night counts are kept in visa_funnel_daily); the night
-- publishes it to services as the visa_rule_checks dataset, so a "not eligible" answer names what failed.
with

checks as (

    select * from {{ ref('int_visa_rule_checks') }}

),

final as (

    select
        ds,
        destination,
        rule_version,
        user_key,
        cast(score as integer) as score,
        cast(history_days as integer) as history_days,
        cast(qualifying_nights as integer) as qualifying_nights,
        passes_min_score,
        passes_identity,
        passes_court_list,
        passes_history,
        passes_qualifying_nights,
        is_eligible

    from checks

)

select * from final
