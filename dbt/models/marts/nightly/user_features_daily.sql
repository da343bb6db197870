{#- The characteristics of the feature registry per user_key and night, as analysts may see them: a tenure (a
    characteristic in days or months counted from a date, window 0) as its band, named <name>_band, since the
    exact value gives the date away; every other characteristic as the scorecard reads it. -#}
{%- set columns = [] -%}
{%- if execute -%}
    {%- set registry = run_query("select feature, unit, window_days from " ~ ref('feature_registry')
                                 ~ " order by reason_code") -%}
    {%- for feature, unit, window_days in registry.rows -%}
        {%- if unit in ('days', 'months') and window_days == 0 -%}
            {%- set months = feature if unit == 'months' else '(' ~ feature ~ ' / 30.4375)' -%}
            {%- do columns.append(tenure_band(months) ~ ' as ' ~ feature.rsplit('_', 1)[0] ~ '_band') -%}
        {%- else -%}
            {%- do columns.append(adapter.quote(feature)) -%}
        {%- endif -%}
    {%- endfor -%}
{%- endif %}
-- depends_on: {{ ref('feature_registry') }}
with

features as (

    select * from {{ ref('stg_user_features') }}

),

final as (

    select
        ds,
        user_key,
        history_days
        {%- for column in columns %},
        {{ column }}
        {%- endfor %}

    from features

)

select * from final
