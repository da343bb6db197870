with

source as (

    select * from {{ lake_source('exclusions') }}
    where ds = {{ night() }}

),

renamed as (

    select
        ds,
        {{ pseudonymize('user_id') }} as user_key,
        cast(exclusion_code as {{ string_type() }}) as exclusion_code

    from source

)

select * from renamed
