-- Order mix (BP03-BP06) per night: shares of the last 90 days' orders and completed spending, for every user in
-- the night's profile; missing (not zero) when the user placed no order or spent nothing.
with

profiles as (

    select * from {{ ref('input_profiles') }}

),

order_windows as (

    select * from {{ ref('input_order_windows') }}

)

select
    profiles.night,
    profiles.user_id,
    {{ share('order_windows.cancelled_90d', 'order_windows.orders_90d') }} as bp_cancel_rate_90,
    {{ share('order_windows.returned_90d', 'order_windows.orders_90d') }} as bp_return_rate_90,
    {{ share('order_windows.spend_local_90d', 'order_windows.spend_90d') }} as bp_local_services_share_90,
    {{ share('order_windows.spend_essential_90d', 'order_windows.spend_90d') }} as bp_essential_share_90

from profiles
left join order_windows
    on profiles.night = order_windows.night
    and profiles.user_id = order_windows.user_id
