-- Per night, each user's 90-day order sums as the Spark features job keeps them (lake/features/windows: events
-- in the 90 days up to the night, delivered by it).
with

nights as (

    {{ feature_nights() }}

),

windows as (

    select * from {{ lake_source('windows') }}

)

select
    nights.night,
    windows.user_id,
    windows.orders_90d,
    windows.cancelled_90d,
    windows.returned_90d,
    windows.spend_90d,
    windows.spend_local_90d,
    windows.spend_essential_90d

from nights
inner join windows
    on windows.ds = nights.night
