-- Tonight's lists compared with the lists of the previous night that has
-- scores (on a first night everything is 'added').
with

scored_nights as (

    select distinct ds from {{ ref('sesame_scores') }}

),

previous_night as (

    select max(ds) as ds
    from scored_nights
    where ds < {{ night() }}

),

eligibility as (

    select
        ds,
        destination,
        user_key

    from {{ ref('visa_eligibility') }}

),

tonight as (

    select
        destination,
        user_key

    from eligibility
    where ds = {{ night() }}

),

previous as (

    select
        eligibility.destination,
        eligibility.user_key

    from eligibility
    inner join previous_night
        on eligibility.ds = previous_night.ds

),

added as (

    select
        tonight.destination,
        tonight.user_key,
        'added' as change

    from tonight
    left join previous
        on tonight.destination = previous.destination
        and tonight.user_key = previous.user_key
    where previous.user_key is null

),

removed as (

    select
        previous.destination,
        previous.user_key,
        'removed' as change

    from previous
    left join tonight
        on previous.destination = tonight.destination
        and previous.user_key = tonight.user_key
    where tonight.user_key is null

),

changes as (

    select * from added
    union all
    select * from removed

),

final as (

    select
        {{ night() }} as ds,
        changes.destination,
        changes.user_key,
        changes.change,
        previous_night.ds as previous_ds

    from changes
    cross join previous_night

)

select * from final
