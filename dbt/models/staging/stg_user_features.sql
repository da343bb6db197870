{#- One double column per feature listed in the feature_registry seed: Spark's from its feature table, dbt's from
    the table models/features/dbt_user_features wrote into the lake. -#}
{%- set features = {'spark': [], 'dbt': []} -%}
{%- if execute -%}
    {%- set registry = run_query("select feature, engine from " ~ ref('feature_registry') ~ " order by reason_code") -%}
    {%- for row in registry.rows -%}
        {%- do features[row[1]].append(row[0]) -%}
    {%- endfor -%}
{%- endif %}
-- depends_on: {{ ref('feature_registry') }}
-- depends_on: {{ ref('dbt_user_features') }}

with

spark_features as (

    select * from {{ lake_source('user_features', extra_columns=features['spark']) }}
    where ds = {{ night() }}

),

dbt_features as (

    select * from {{ lake_source('dbt_user_features', extra_columns=features['dbt']) }}
    where ds = {{ night() }}

),

renamed as (

    select
        spark_features.ds,
        {{ pseudonymize('spark_features.user_id') }} as user_key,

        cast(spark_features.history_days as integer) as history_days

        {%- for feature in features['spark'] %},
        cast(spark_features.{{ adapter.quote(feature) }} as double) as {{ adapter.quote(feature) }}
        {%- endfor %}
        {%- for feature in features['dbt'] %},
        cast(dbt_features.{{ adapter.quote(feature) }} as double) as {{ adapter.quote(feature) }}
        {%- endfor %}

    from spark_features
    left join dbt_features
        on spark_features.user_id = dbt_features.user_id

)

select * from renamed
