{#- One double column per feature listed in the feature_registry seed. -#}
{%- set features = [] -%}
{%- if execute -%}
    {%- set registry = run_query("select feature from " ~ ref('feature_registry') ~ " order by reason_code") -%}
    {%- set features = registry.columns[0].values() | list -%}
{%- endif %}
-- depends_on: {{ ref('feature_registry') }}

with

source as (

    select * from {{ lake_source('user_features', extra_columns=features) }}
    where ds = {{ night() }}

),

renamed as (

    select
        ds,
        {{ pseudonymize('user_id') }} as user_key,

        cast(history_days as integer) as history_days

        {%- for feature in features %},
        cast({{ adapter.quote(feature) }} as double) as {{ adapter.quote(feature) }}
        {%- endfor %}

    from source

)

select * from renamed
