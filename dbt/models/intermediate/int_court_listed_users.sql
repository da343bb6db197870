-- Users on the court list as of tonight, one row each.
with

blacklist as (

    select * from {{ ref('stg_blacklist') }}

),

listed_users as (

    select
        user_key,
        min(listed_date) as first_listed_date,
        min(delivered_ds) as first_delivered_ds,
        count(distinct case_id) as case_count

    from blacklist
    group by user_key

)

select * from listed_users
