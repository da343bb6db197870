-- The court list as of the night: every delivery up to and including it.
with

source as (

    select * from {{ lake_source('blacklist') }}
    where ds <= {{ night() }}

),

renamed as (

    select
        cast(case_id as {{ string_type() }}) as case_id,
        {{ pseudonymize('user_id') }} as user_key,

        cast(court as {{ string_type() }}) as court,
        cast(reason as {{ string_type() }}) as reason,

        cast(listed_date as date) as listed_date,
        ds as delivered_ds

    from source

)

select * from renamed
