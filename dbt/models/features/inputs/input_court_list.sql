-- Per night, the users on the court list as known by it: entries delivered by the night, listed by then.
with

nights as (

    {{ feature_nights() }}

),

blacklist as (

    select * from {{ lake_source('blacklist') }}

)

select distinct
    nights.night,
    blacklist.user_id

from nights
inner join blacklist
    on blacklist.ds <= nights.night
    and blacklist.listed_date <= nights.night
