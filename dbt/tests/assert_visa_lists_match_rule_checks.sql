-- Tonight's lists are exactly the users whose rule checks all pass: a service that explains a "not eligible"
-- answer from visa_rule_checks never contradicts visa_eligibility.
with

listed as (

    select destination, user_key from {{ ref('visa_eligibility') }}
    where ds = {{ night() }}

),

passing as (

    select destination, user_key from {{ ref('visa_rule_checks') }}
    where is_eligible

),

only_listed as (

    select destination, user_key, 'listed without passing every check' as problem
    from listed
    where not exists (
        select 1 from passing
        where passing.destination = listed.destination and passing.user_key = listed.user_key
    )

),

only_passing as (

    select destination, user_key, 'passes every check but not listed' as problem
    from passing
    where not exists (
        select 1 from listed
        where listed.destination = passing.destination and listed.user_key = passing.user_key
    )

)

select * from only_listed
union all
select * from only_passing
