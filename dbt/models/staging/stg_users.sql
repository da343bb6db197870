-- full_name, gender and birth_year are deliberately not selected.
with

source as (

    select * from {{ lake_source('users') }}
    where ds = {{ night() }}

),

renamed as (

    select
        ds,
        {{ pseudonymize('user_id') }} as user_key,

        cast(city as {{ string_type() }}) as city,
        cast(city_tier as integer) as city_tier,
        cast(occupation as {{ string_type() }}) as occupation,

        cast(identity_verified = 1 as boolean) as is_identity_verified,
        cast(phone_tenure_months as integer) as phone_tenure_months,
        cast(address_months as integer) as address_months,

        cast(registered_date as date) as registered_date,
        cast(event_date as date) as event_date

    from source

)

select * from renamed
