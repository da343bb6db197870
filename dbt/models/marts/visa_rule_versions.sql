with

rules as (

    select * from {{ ref('visa_rules') }}

),

final as (

    select
        destination,
        rule_version,
        min_score,
        require_identity_verified,
        exclude_court_listed,
        min_history_days,
        min_qualifying_nights,
        valid_from,
        valid_to

    from rules

)

select * from final
