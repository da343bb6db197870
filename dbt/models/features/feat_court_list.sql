-- Court list (CH06) per night: 1 for a user on the court list of judgement defaulters as known by the night,
-- else 0, for every user in the night's profile.
with

profiles as (

    select * from {{ ref('input_profiles') }}

),

listed as (

    select * from {{ ref('input_court_list') }}

)

select
    profiles.night,
    profiles.user_id,
    cast(case when listed.user_id is null then 0 else 1 end as double) as ch_court_listed

from profiles
left join listed
    on profiles.night = listed.night
    and profiles.user_id = listed.user_id
