-- Every reason code published with a score is explained in the dictionary,
-- and no score carries more than four.
with

published as (

    select
        ds,
        user_key,
        reason_codes

    from {{ ref('sesame_scores') }}
    where ds = {{ night() }}

),

codes as (

    select
        ds,
        user_key,
        {{ unnest_array('reason_codes') }} as reason_code

    from published

),

unknown_codes as (

    select
        codes.ds,
        codes.user_key,
        codes.reason_code,
        'unknown reason code' as problem

    from codes
    left join {{ ref('reason_code_dictionary') }} as dictionary
        on codes.reason_code = dictionary.reason_code
    where dictionary.reason_code is null

),

too_many as (

    select
        ds,
        user_key,
        null as reason_code,
        'more than four reason codes' as problem

    from published
    where {{ array_size('reason_codes') }} > 4

)

select * from unknown_codes
union all
select * from too_many
