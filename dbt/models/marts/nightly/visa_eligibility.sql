with

checks as (

    select * from {{ ref('int_visa_rule_checks') }}

),

final as (

    select
        ds,
        destination,
        user_key,
        score,
        rule_version,
        qualifying_nights

    from checks
    where is_eligible

)

select * from final
