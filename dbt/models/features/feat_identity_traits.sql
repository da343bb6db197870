-- Identity traits (IT01-IT04) per night, for every user in the night's profile.
with

profiles as (

    select * from {{ ref('input_profiles') }}

)

select
    night,
    user_id,
    cast(identity_verified as double) as it_identity_verified,
    cast({{ dbt.datediff('registered_date', 'night', 'day') }} as double) as it_account_age_days,
    cast(phone_tenure_months as double) as it_phone_tenure_months,
    cast(address_months as double) as it_address_months

from profiles
